"""Teacher-forced scoring: per-token log-probs and entropies of responses, in fp32.

Sequences are laid out as [left-padded prompt (P) | response (M)], the layout
the sampler produces, so the logits at slot P-1+t score response token t.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from explore_rl.models import transformer


def response_logits(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                    response_mask, *, temperature: float = 1.0):
  """fp32 logits / T [B, M, V]: slot t holds the logits that score response token t.

  The full next-token distributions, for losses over the vocabulary (distillation:
  docs/algorithms.md, "Self-distillation"). Masked slots hold whatever the model
  computes there; callers mask.
  """
  p = prompt_tokens.shape[1]
  tokens = jnp.concatenate([prompt_tokens, response_tokens], axis=1)
  valid = jnp.concatenate([prompt_valid, response_mask], axis=1)
  logits = transformer.forward(graphdef, params, tokens, valid)[:, p - 1:-1]   # [B, M, V]
  return logits.astype(jnp.float32) / temperature


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
  logits = transformer.packed_forward(graphdef, params, tokens, segments, positions)
  chunks = logits.reshape(index.shape[0], -1, logits.shape[-1])            # [C, R_p/C·L, V]
  logits = jax.vmap(lambda rows, idx: rows[idx])(chunks, index)            # [C, R/C, M, V]
  logits = logits.reshape(*response_tokens.shape, -1)                       # [R, M, V]
  return logprobs_from_logits(logits.astype(jnp.float32) / temperature, response_tokens,
                              response_mask)


def response_logprobs(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                      response_mask, *, temperature: float = 1.0):
  """(log pi(y_t | x, y_<t) fp32 [B, M], entropy H_t fp32 [B, M]), zero where masked.

  prompt_tokens/valid: [B, P]; response_tokens/mask: [B, M]. `temperature`
  rescales logits as the sampler did (the policy a run trains is softmax(z / T)).
  """
  logits = response_logits(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                           response_mask, temperature=temperature)
  return logprobs_from_logits(logits, response_tokens, response_mask)


@functools.partial(jax.jit, static_argnames=("graphdef", "temperature"))
def score_responses(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                    response_mask, *, temperature: float = 1.0):
  """`response_logprobs` as one jitted call, no gradient: (log-probs [B, M], entropy [B, M]).

  Used where a policy scores tokens another context drew: a recomputed π_old, the
  trained policy's log-probs of a dependent sampler's tokens, a teacher's scores.
  """
  return response_logprobs(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                           response_mask, temperature=temperature)
