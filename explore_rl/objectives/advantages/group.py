"""Group-relative advantages of the GRPO family, DAPO's dynamic-sampling mask and overlong shaping.

Convention: `rewards[..., N]` holds the N samples of one prompt on the LAST axis
(leading axes are prompts, devices, ...), `mask[..., N]` (optional) marks the
valid samples so that groups can be padded to a static N. Invalid samples get
advantage 0. A group with fewer than two valid samples, or whose valid rewards
are all equal, carries no learning signal and gets exactly 0 (never NaN, also
under `jax.grad`). All arithmetic is fp32.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.registries import ADVANTAGES, REWARD_SHAPERS

__all__ = [
    "dapo_keep_mask",
    "dapo_overlong_shaping",
    "dr_grpo",
    "grpo",
    "overlong_penalty",
    "rloo",
]


def _group_stats(rewards: jax.Array, mask: jax.Array | None):
  """fp32 rewards, fp32 mask, valid count n, centred rewards (0 when invalid), informative flag."""
  rewards = rewards.astype(jnp.float32)  # [..., N]
  mask = jnp.ones_like(rewards) if mask is None else mask.astype(jnp.float32)
  valid = mask > 0
  rewards = jnp.where(valid, rewards, 0.0)  # padding may hold garbage
  n = jnp.sum(mask, axis=-1, keepdims=True)  # [..., 1]
  mean = jnp.sum(rewards * mask, axis=-1, keepdims=True) / jnp.maximum(n, 1.0)
  centred = jnp.where(valid, rewards - mean, 0.0)  # [..., N]
  # Compare extremes rather than testing centred == 0: the fp mean of equal values
  # can differ from them in the last bit.
  hi = jnp.max(jnp.where(valid, rewards, -jnp.inf), axis=-1, keepdims=True)
  lo = jnp.min(jnp.where(valid, rewards, jnp.inf), axis=-1, keepdims=True)
  informative = (n >= 2) & (hi > lo)  # [..., 1]
  return rewards, mask, n, centred, informative


@ADVANTAGES.register("grpo")
def grpo(
    rewards: jax.Array, mask: jax.Array | None = None, *, ddof: int = 1, eps: float = 1e-6
) -> jax.Array:
  """GRPO (DeepSeekMath, arXiv 2402.03300): Â_i = (r_i − mean_G r) / (std_G r + eps).

  std over the valid samples with `ddof` (1 = unbiased, as verl's torch.std; 0 =
  population). rewards, mask: [..., N] -> advantages [..., N] fp32.
  """
  _, mask, n, centred, informative = _group_stats(rewards, mask)
  var = jnp.sum(centred**2, axis=-1, keepdims=True) / jnp.maximum(n - ddof, 1.0)
  # Double where: sqrt'(0) is infinite, so the gradient must never see var = 0.
  std = jnp.sqrt(jnp.where(informative, var, 1.0))
  return jnp.where(informative, centred / (std + eps), 0.0)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Dr. GRPO (arXiv 2503.20783): Â_i = r_i − mean_G r, no std division. [..., N] -> [..., N]."""
  _, _, _, centred, informative = _group_stats(rewards, mask)
  return jnp.where(informative, centred, 0.0)


@ADVANTAGES.register("rloo")
def rloo(rewards: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """RLOO (arXiv 2402.14740): Â_i = r_i − mean_{j≠i} r_j = n/(n−1)·(r_i − mean r).

  n = number of valid samples of the group. [..., N] -> [..., N].
  """
  _, _, n, centred, informative = _group_stats(rewards, mask)
  return jnp.where(informative, centred * n / jnp.maximum(n - 1.0, 1.0), 0.0)


# DAPO (arXiv 2503.14476) keeps GRPO's advantage (token-mean loss, clip-higher, no KL
# and dynamic sampling are loss/sampler settings), so configs may name it either way.
ADVANTAGES.register("dapo")(grpo)


def dapo_keep_mask(rewards: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """DAPO dynamic sampling (arXiv 2503.14476): True for groups worth training on.

  A group is kept when it has at least two valid samples whose rewards are not
  all equal (all-correct and all-wrong groups have zero GRPO advantage).
  rewards, mask: [..., N] -> bool [...]. The sampler drops the False groups and
  refills the batch from an oversampled prompt set.
  """
  return _group_stats(rewards, mask)[4][..., 0]


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


@REWARD_SHAPERS.register("dapo_overlong")
def dapo_overlong_shaping(
    rewards: jax.Array, *, lengths: jax.Array, max_length: int, cache_length: int
) -> jax.Array:
  """rewards + R_len(lengths): DAPO's length-aware reward; rewards, lengths [..., N]."""
  penalty = overlong_penalty(lengths, max_length=max_length, cache_length=cache_length)
  return rewards.astype(jnp.float32) + penalty
