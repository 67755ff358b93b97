"""Reward shapers: rewards[..., N] + per-group context -> shaped rewards[..., N].

Diversity-shaped rewards from response embeddings (DRA, EVOL-RL) and DAPO's
length-aware overlong penalty. They run before the advantage estimator.

Call form of every reward shaper: shaper(rewards[..., N], **context) -> [..., N],
the context given by keyword (`embeddings[..., N, D]`, e.g. from the
`explore_rl.rewards` embedding judge, `answer_ids[..., N]`, optional `mask[..., N]`
for padded groups). Each prompt's group is one row. Similarities are taken within a row only, never
across prompts. The shaped rewards then go through an advantage estimator
(GRPO, Dr. GRPO, ...). All arithmetic is fp32; jittable, no gradients needed.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


__all__ = [
    "cosine_similarities",
    "dapo_overlong_shaping",
    "dra_rewards",
    "evol_rewards",
    "overlong_penalty",
]


def cosine_similarities(embeddings: jax.Array) -> jax.Array:
  """cos(e_i, e_j) for every pair of a row: [..., N, D] -> [..., N, N]; 0 for zero vectors."""
  e = jnp.asarray(embeddings).astype(jnp.float32)
  e = e / jnp.maximum(jnp.linalg.norm(e, axis=-1, keepdims=True), 1e-12)
  return jnp.einsum("...id,...jd->...ij", e, e)


def _others(mask: jax.Array) -> jax.Array:
  """[..., N] valid flags -> [..., N, N]: both valid and i != j."""
  n = mask.shape[-1]
  return mask[..., :, None] & mask[..., None, :] & ~jnp.eye(n, dtype=bool)


def _valid(shape, mask: jax.Array | None) -> jax.Array:
  return jnp.ones(shape, bool) if mask is None else jnp.asarray(mask).astype(bool)


def dra_rewards(rewards: jax.Array, embeddings: jax.Array, *,
                mask: jax.Array | None = None) -> jax.Array:
  """DRA (arXiv 2505.09655): R̃_i = R_i / (1 + Σ_{j≠i, same prompt} cos(e_i, e_j)).

  A response similar to many others of its group has its reward shrunk. Negative
  cosines are clipped at 0 [ours]: the sum then never drives the denominator below
  1 (with negatives it could reach 0 or flip the reward's sign). The public code
  sums over the whole batch; here only over the prompt's own valid responses.
  Masked (padding) entries keep their reward and count for nobody.
  rewards[..., N], embeddings[..., N, D] -> [..., N] fp32.
  """
  rewards = jnp.asarray(rewards).astype(jnp.float32)  # [..., N]
  valid = _valid(rewards.shape, mask)
  sim = jnp.maximum(cosine_similarities(embeddings), 0.0)  # [..., N, N]
  crowding = jnp.sum(jnp.where(_others(valid), sim, 0.0), axis=-1)  # [..., N]
  return jnp.where(valid, rewards / (1.0 + crowding), rewards)


# Novelties closer than this count as equal [ours]: rounding noise in the cosines must
# not decide between minmax's 0/1 and its all-equal 0.5.
_NOVELTY_TIE = 1e-6


def _minmax_in_group(u: jax.Array, group: jax.Array) -> jax.Array:
  """(u − min)/(max − min) over the group's members; 1 for a lone member, 0.5 when all equal."""
  lo = jnp.min(jnp.where(group, u, jnp.inf), axis=-1, keepdims=True)
  hi = jnp.max(jnp.where(group, u, -jnp.inf), axis=-1, keepdims=True)
  spread = hi - lo > _NOVELTY_TIE
  scaled = (u - jnp.where(spread, lo, 0.0)) / jnp.where(spread, hi - lo, 1.0)
  alone = jnp.sum(group, axis=-1, keepdims=True) == 1
  return jnp.where(spread, scaled, jnp.where(alone, 1.0, 0.5))


def evol_rewards(rewards: jax.Array | None, *, answer_ids: jax.Array, embeddings: jax.Array,
                 mask: jax.Array | None = None) -> jax.Array:
  """EVOL-RL label-free rewards (arXiv 2509.15194): majority selects, novelty varies.

  1. Pseudo-label: the majority answer among parseable responses (answer id ≥ 0;
     −1 = unparseable); a tie goes to the answer seen first (Counter.most_common).
     A response is correct iff its answer equals the pseudo-label.
  2. Novelty over parseable responses, similarities clipped to [0, 1]:
     u_i = 1 − (½·mean sim to the others of its correctness group
                + ½·max sim to any other).
  3. minmax(u) within each correctness group (a lone member: 1, so its u, for
     which the reference falls back to the mean over all others, never matters;
     all equal: 0.5);
     correct -> 0.5 + 0.5·minmax(u) ∈ [0.5, 1], incorrect -> −1 + 0.5·minmax(u) ∈
     [−1, −0.5], unparseable -> −1, masked (padding) -> 0.
  Follows the reference reward manager (`semantic_novelty.py`). answer_ids[..., N]
  int, embeddings[..., N, D] -> rewards [..., N] fp32. `rewards` (the verifier's)
  is there for the shapers' call form, shaper(rewards, **context): EVOL-RL is
  label-free, the vote replaces them.
  """
  del rewards  # label-free: see above
  ids = jnp.asarray(answer_ids)
  real = _valid(ids.shape, mask)
  voted = real & (ids >= 0)  # [..., N] parseable
  same = ids[..., :, None] == ids[..., None, :]  # [..., N, N]
  votes = jnp.where(voted, jnp.sum(same & voted[..., None, :], axis=-1), 0)  # [..., N]
  leader = jnp.argmax(votes == jnp.max(votes, axis=-1, keepdims=True), axis=-1)  # first top
  label = jnp.take_along_axis(ids, leader[..., None], axis=-1)  # [..., 1]
  correct = voted & (ids == label)
  wrong = voted & ~correct

  sim = jnp.clip(cosine_similarities(embeddings), 0.0, 1.0)  # [..., N, N]
  others = _others(voted)
  in_group = others & (correct[..., :, None] == correct[..., None, :])
  count = jnp.sum(in_group, axis=-1)
  mean_sim = jnp.sum(jnp.where(in_group, sim, 0.0), axis=-1) / jnp.maximum(count, 1)
  max_sim = jnp.max(jnp.where(others, sim, 0.0), axis=-1)
  novelty = 1.0 - (0.5 * mean_sim + 0.5 * max_sim)  # [..., N]

  scaled = jnp.where(correct, _minmax_in_group(novelty, correct),
                     _minmax_in_group(novelty, wrong))
  reward = jnp.where(correct, 0.5 + 0.5 * scaled, -1.0 + 0.5 * scaled)
  return jnp.where(real, jnp.where(voted, reward, -1.0), 0.0)


def overlong_penalty(lengths: jax.Array, *, max_length: int, cache_length: int) -> jax.Array:
  """DAPO soft overlong punishment (arXiv 2503.14476), lengths [...] -> [...] fp32.

      R_len(y) = 0                                 |y| ≤ L_max − L_cache
               = ((L_max − L_cache) − |y|)/L_cache  L_max − L_cache < |y| ≤ L_max
               = −1                                L_max < |y|
  i.e. clip(−(|y| − (L_max − L_cache))/L_cache, −1, 0).
  """
  if not 0 < cache_length <= max_length:
    raise ValueError(f"need 0 < cache_length <= max_length, got {cache_length}, {max_length}")
  excess = lengths.astype(jnp.float32) - (max_length - cache_length)
  return jnp.clip(-excess / cache_length, -1.0, 0.0)


def dapo_overlong_shaping(
    rewards: jax.Array, *, lengths: jax.Array, max_length: int, cache_length: int
) -> jax.Array:
  """rewards + R_len(lengths): DAPO's length-aware reward; rewards, lengths [..., N]."""
  penalty = overlong_penalty(lengths, max_length=max_length, cache_length=cache_length)
  return rewards.astype(jnp.float32) + penalty
