"""Teacher-forced scoring: per-token log-probs and entropies of responses, in fp32.

Sequences are laid out as [left-padded prompt (P) | response (M)], the layout
the sampler produces, so the logits at slot P-1+t score response token t.

The head runs at the response slots only, and, for log-probs and entropies, a chunk
of `HEAD_CHUNK` tokens at a time under `jax.checkpoint` (`head_logprobs`): the
[tokens, V] logits of a 49k-token vocabulary (SmolLM2: 0.7 GB in fp32 for 16 rows of
224 tokens, a dozen live copies in a forward + backward) never exist whole, in the
forward or the backward pass (docs/design.md, "The head a chunk at a time").
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from explore_rl.models import transformer

# Tokens per chunk of the head: [1024, 49152] fp32 logits are 192 MiB, and a chunk's
# matmul [1024, 576] @ [576, 49152] is large enough to run at the matmul peak.
HEAD_CHUNK = 1024


def response_hidden(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                    response_mask):
  """Final hidden states [B, M, D] at the slots whose logits score the response tokens."""
  p = prompt_tokens.shape[1]
  tokens = jnp.concatenate([prompt_tokens, response_tokens], axis=1)
  valid = jnp.concatenate([prompt_valid, response_mask], axis=1)
  return transformer.forward(graphdef, params, tokens, valid, head=False)[:, p - 1:-1]


def response_logits(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                    response_mask, *, temperature: float = 1.0):
  """fp32 logits / T [B, M, V]: slot t holds the logits that score response token t.

  The full next-token distributions, for losses over the vocabulary (distillation:
  docs/algorithms.md, "Self-distillation"). Masked slots hold whatever the model
  computes there; callers mask.
  """
  x = response_hidden(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                      response_mask)                                     # [B, M, D]
  config, w = transformer.head(graphdef, params)
  return transformer.head_logits(config, x, w) / temperature


def head_logprobs(config, w, x, tokens, mask, *, temperature: float = 1.0,
                  chunk: int = HEAD_CHUNK):
  """`logprobs_from_logits` of the logits x @ w / T, a chunk of tokens at a time.

  x: final hidden states [..., D]; w: the head [D, V]; tokens int32, mask bool [...].
  Each chunk's logits are made, reduced to (log-prob, entropy) and dropped; the
  backward pass makes them again (`jax.checkpoint`), so memory holds one chunk's
  [chunk, V] logits, not all of them, for one more head matmul per token. Equal to
  the unchunked computation up to fp32 summation order.
  """
  n, d = tokens.size, x.shape[-1]
  size = max(1, min(chunk, n))
  pad = -n % size                                          # zero rows filling the last chunk
  xs = jnp.pad(x.reshape(n, d), ((0, pad), (0, 0))).reshape(-1, size, d)  # [C, chunk, D]
  ts = jnp.pad(tokens.reshape(n), (0, pad)).reshape(-1, size)            # [C, chunk]
  ms = jnp.pad(mask.reshape(n), (0, pad)).reshape(-1, size)

  @jax.checkpoint
  def one(w, xc, tc, mc):
    logits = transformer.head_logits(config, xc, w) / temperature        # [chunk, V] fp32
    return logprobs_from_logits(logits, tc, mc)

  logp, entropy = jax.lax.map(lambda a: one(w, *a), (xs, ts, ms))
  unflat = lambda a: a.reshape(-1)[:n].reshape(tokens.shape)
  return unflat(logp), unflat(entropy)


def logprobs_from_logits(logits, response_tokens, response_mask):
  """(log-probs of the tokens [B, M], entropies [B, M]) from logits [B, M, V], 0 where masked."""
  logp_all = jax.nn.log_softmax(logits, axis=-1)
  logp = jnp.take_along_axis(logp_all, response_tokens[..., None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  return jnp.where(response_mask, logp, 0.0), jnp.where(response_mask, entropy, 0.0)


def packed_response_logprobs(graphdef, params, tokens, segments, positions, index,
                             response_tokens, response_mask, *, temperature: float = 1.0):
  """`response_logprobs` of sequences packed several to a row (training/packing.py).

  tokens/segments/positions: int32 [R_p, L], the packed rows, in C chunks of R_p / C rows;
  index: int32 [C, R/C, M], the flat slot of its chunk's rows whose logits score response
  token t of padded row i of the chunk. Chunks gather independently: with the chunks laid
  over the data axes, each device gathers its own rows' logits (no all-gather).
  Returns (log-probs fp32 [R, M], entropy fp32 [R, M]) in the padded layout.
  """
  x = transformer.packed_forward(graphdef, params, tokens, segments, positions, head=False)
  chunks = x.reshape(index.shape[0], -1, x.shape[-1])                      # [C, R_p/C·L, D]
  x = jax.vmap(lambda rows, idx: rows[idx])(chunks, index)                 # [C, R/C, M, D]
  x = x.reshape(*response_tokens.shape, -1)                                # [R, M, D]
  config, w = transformer.head(graphdef, params)
  return head_logprobs(config, w, x, response_tokens, response_mask, temperature=temperature)


def response_logprobs(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                      response_mask, *, temperature: float = 1.0):
  """(log pi(y_t | x, y_<t) fp32 [B, M], entropy H_t fp32 [B, M]), zero where masked.

  prompt_tokens/valid: [B, P]; response_tokens/mask: [B, M]. `temperature`
  rescales logits as the sampler did (the policy a run trains is softmax(z / T)).
  """
  x = response_hidden(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                      response_mask)                                     # [B, M, D]
  config, w = transformer.head(graphdef, params)
  return head_logprobs(config, w, x, response_tokens, response_mask, temperature=temperature)


@functools.partial(jax.jit, static_argnames=("graphdef", "temperature"))
def score_responses(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                    response_mask, *, temperature: float = 1.0):
  """`response_logprobs` as one jitted call, no gradient: (log-probs [B, M], entropy [B, M]).

  Used where a policy scores tokens another context drew: a recomputed π_old, the
  trained policy's log-probs of a dependent sampler's tokens, a teacher's scores.
  """
  return response_logprobs(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                           response_mask, temperature=temperature)
