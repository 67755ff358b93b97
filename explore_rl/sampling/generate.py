"""Jitted generation: one prefill per prompt, N samples decoded over a KV cache.

Layout: prompts are left-padded to P tokens so every row's last prompt token sits
at slot P-1 and decode step t writes slot P+t for all rows at once; RoPE
positions count only real tokens, so padding changes nothing.

Cache-length buckets: decoding runs in segments, one `while_loop` each, and the
cache grows between them. Segment j holds L_j = min(⌈(P+1)/c⌉·c + j·c, P+M) slots
(c = `cache_bucket`) and runs the steps whose slot P+t < L_j, so a step reads
at most c - 1 slots past its position, whatever the maximum length: its cost
follows the position. Masked slots get probability exactly 0, so the buckets
change the result only by the summation order of the attention (`cache_bucket=0`
attends to all P+M slots from the first step: the unbucketed decode).

FLOPs (`Rollout.flops`, models/flops.py): the prefill of B x P tokens over P slots, and
every step the loop ran, for all B·N rows (finished ones too), over its segment's L_j.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from explore_rl.models.flops import forward_flops
from explore_rl.models.transformer import KVCache, causal_mask, positions_from_mask
from explore_rl.objectives.shapes import assert_ints, assert_like, assert_rank
from explore_rl.sampling.processors import SamplingConfig, policy_logits, sample_token


class Rollout(NamedTuple):
  """N samples per prompt, rows ordered prompt-major: row b*N + j is sample j of prompt b."""
  tokens: jax.Array           # int32 [B*N, M], pad after EOS
  mask: jax.Array             # bool  [B*N, M], response tokens including the EOS
  logprobs: jax.Array         # fp32  [B*N, M], log pi_T(token): the policy at temperature T,
                              #   before top-k/p and min-p (what the learner trains)
  sample_logprobs: jax.Array  # fp32  [B*N, M], log-prob under the processed sampling dist
  entropy: jax.Array          # fp32  [B*N, M], entropy of pi_T at each step
  lengths: jax.Array          # int32 [B*N], number of response tokens (EOS included)
  truncated: jax.Array        # bool  [B*N], hit max_new_tokens without EOS
  steps: jax.Array            # int32 [], decode steps run (fewer than M when all rows stopped)
  flops: jax.Array            # fp32  [], FLOPs of the prefill and the steps run (models/flops.py)


def empty_outputs(rows: int, max_new_tokens: int, pad_id: int) -> tuple:
  """The decode loop's per-step buffers (tokens, mask, logprobs, sample_logprobs, entropy),
  each [rows, max_new_tokens], before step 0."""
  shape = (rows, max_new_tokens)
  return (jnp.full(shape, pad_id, jnp.int32), jnp.zeros(shape, bool),
          jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32),
          jnp.zeros(shape, jnp.float32))


def record_step(out: tuple, t, tok, sample_lp, policy_logits_t, done, *, eos_id: int,
                pad_id: int):
  """Write decode step t into `out` (`empty_outputs`): the drawn token (pad on finished
  rows), the live mask, log π_T(token) and the entropy of π_T from the tempered policy logits
  [rows, V], and the sampling log-prob. Returns (out, token fed next, done after it)."""
  logp_all = jax.nn.log_softmax(policy_logits_t, -1)
  policy_lp = jnp.take_along_axis(logp_all, tok[:, None], -1)[:, 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  live = ~done
  tok = jnp.where(live, tok, pad_id)
  out = (out[0].at[:, t].set(tok), out[1].at[:, t].set(live),
         out[2].at[:, t].set(jnp.where(live, policy_lp, 0.0)),
         out[3].at[:, t].set(jnp.where(live, sample_lp, 0.0)),
         out[4].at[:, t].set(jnp.where(live, entropy, 0.0)))
  return out, tok, done | (tok == eos_id)


def as_rollout(outputs: tuple, done, steps, flops) -> Rollout:
  """The `Rollout` of the decode loop's final buffers."""
  tokens, mask, lp, slp, ent = outputs
  return Rollout(tokens, mask, lp, slp, ent, mask.sum(1).astype(jnp.int32), ~done, steps,
                 flops)


def cache_lengths(prompt_len: int, max_new_tokens: int, bucket: int) -> list[int]:
  """The cache length L_j of each decode segment (module docstring); [P+M] when bucket=0."""
  total = prompt_len + max_new_tokens
  if bucket <= 0:
    return [total]
  first = -(-(prompt_len + 1) // bucket) * bucket
  return [min(length, total) for length in range(first, total + bucket - 1, bucket)]


def decode_flops(config, rows: int, prompt_len: int, lengths: list[int], steps):
  """FLOPs of `steps` (int32 []) decode steps of `rows` rows, step t in the first segment
  of `lengths` (`cache_lengths`) with P + t < L_j, attending to its L_j slots."""
  flops, start = 0.0, 0
  for length in lengths:
    end = length - prompt_len
    flops = flops + forward_flops(config, rows, jnp.clip(steps, start, end) - start, length)
    start = end
  return flops


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "config", "eos_id",
                                             "pad_id", "cache_bucket"))
def generate(graphdef, params, prompt_tokens: jax.Array, prompt_valid: jax.Array,
             rng: jax.Array, *, num_samples: int, config: SamplingConfig, eos_id: int,
             pad_id: int, cache_bucket: int = 128) -> Rollout:
  """Sample `num_samples` responses for each of B left-padded prompts [B, P].

  `cache_bucket`: the cache grows in multiples of this many slots (module docstring).
  """
  assert_rank("prompt_tokens", prompt_tokens, 2)
  assert_like("prompt_tokens", prompt_tokens, prompt_valid=prompt_valid)
  assert_ints("prompt_tokens", prompt_tokens)
  model = nnx.merge(graphdef, params)
  b, p = prompt_tokens.shape
  m = config.max_new_tokens
  s = p + m

  # Prefill once per prompt, into a cache of exactly P slots.
  cache = KVCache.zeros(model.config, b, p)
  key_valid = jnp.zeros((b, s), bool).at[:, :p].set(prompt_valid)
  hidden, cache = model(prompt_tokens, positions_from_mask(prompt_valid),
                        causal_mask(prompt_valid), cache, 0, head=False)
  last = model.logits(hidden[:, -1])                  # [B, V]: the head at the last slot only
  next_pos = prompt_valid.sum(axis=1).astype(jnp.int32)                 # [B]

  # Share the prompt's cache among its N samples (a copy, not N prefills).
  rep = lambda x: jnp.repeat(x, num_samples, axis=0)
  cache = jax.tree.map(rep, cache)
  last, key_valid, next_pos = rep(last), rep(key_valid), rep(next_pos)
  rows = b * num_samples

  def cond(end):
    return lambda state: (state[0] < end) & ~jnp.all(state[3])

  def body(state):
    t, rng, cache, done, last, key_valid, out = state
    rng, step_rng = jax.random.split(rng)
    tok, sample_lp = sample_token(step_rng, last, config)
    out, tok, done = record_step(out, t, tok, sample_lp, policy_logits(last, config.temperature),
                                 done, eos_id=eos_id, pad_id=pad_id)
    # Feed the token at slot P + t; it attends to every valid slot up to itself.
    slot = p + t
    key_valid = key_valid.at[:, slot].set(True)
    logits, cache = model(tok[:, None], (next_pos + t)[:, None],
                          key_valid[:, None, :cache.length], cache, slot)
    return t + 1, rng, cache, done, logits[:, 0], key_valid, out

  out = empty_outputs(rows, m, pad_id)
  state = (jnp.int32(0), rng, cache, jnp.zeros((rows,), bool), last, key_valid, out)
  lengths = cache_lengths(p, m, cache_bucket)
  for length in lengths:  # segments: steps with slot P + t < L_j
    state = state[:2] + (state[2].grow(length),) + state[3:]
    state = jax.lax.while_loop(cond(length - p), body, state)
  steps, _, _, done, _, _, out = state
  flops = forward_flops(model.config, b, p, p) + decode_flops(model.config, rows, p, lengths,
                                                               steps)
  return as_rollout(out, done, steps, flops)
