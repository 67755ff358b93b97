"""FLOPs of the decoder over the shapes a pass ran (docs/algorithms.md, "FLOPs").

One convention for every pass: `rows` rows each feed `tokens` new tokens, and each
token attends to `context` key slots (the slots the pass scores, masked or not: a
prefill's or a training row's whole length, a decode step's cache length). It costs

    rows · tokens · (2·W + 4·L·H·d·context)

W = the weights a token multiplies (the q/k/v/o projections and the three MLP matrices
of the L layers, and the LM head; the embedding is a gather, norms and biases are left
out), H query heads of size d: q·kᵀ and the weighted sum of v take 2·H·d FLOPs per key
each. A training pass is the forward plus a backward of twice its FLOPs, plus one more
forward with `remat`.
"""
from __future__ import annotations

from explore_rl.models.config import ModelConfig


def matmul_weights(config: ModelConfig) -> int:
  """W: the weights each token's forward multiplies (module docstring)."""
  d, f, h = config.hidden_size, config.intermediate_size, config.head_size
  q, kv = config.num_attention_heads * h, config.num_key_value_heads * h
  return config.num_hidden_layers * (2 * d * q + 2 * d * kv + 3 * d * f) + d * config.vocab_size


def forward_flops(config: ModelConfig, rows, tokens, context):
  """FLOPs of a forward of `rows` x `tokens` new tokens over `context` key slots each.

  Python numbers give a float; a traced step count (int32 []) gives an fp32 scalar, so a
  jitted decode can count the steps it ran.
  """
  per_token = (2.0 * matmul_weights(config) + 4.0 * config.num_hidden_layers
               * config.num_attention_heads * config.head_size * context)
  return per_token * rows * tokens


def sequence_flops(config: ModelConfig, rows, length):
  """A forward without a cache over [rows, length] (every token attends to all `length`)."""
  return forward_flops(config, rows, length, length)


def training_flops(config: ModelConfig, rows, length):
  """Forward + backward (2x the forward) over [rows, length], + a forward with remat."""
  return (3 + int(config.remat)) * sequence_flops(config, rows, length)
