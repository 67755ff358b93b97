"""Group-relative advantages of the GRPO family (GRPO, Dr. GRPO, RLOO).

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

from explore_rl.objectives.shapes import assert_like


__all__ = [
    "dr_grpo",
    "grpo",
    "rloo",
]


def _group_stats(rewards: jax.Array, mask: jax.Array | None):
  """fp32 rewards, fp32 mask, valid count n, centred rewards (0 when invalid), informative flag."""
  assert_like("rewards", rewards, mask=mask)
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


def dr_grpo(rewards: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """Dr. GRPO (arXiv 2503.20783): Â_i = r_i − mean_G r, no std division. [..., N] -> [..., N]."""
  _, _, _, centred, informative = _group_stats(rewards, mask)
  return jnp.where(informative, centred, 0.0)


def rloo(rewards: jax.Array, mask: jax.Array | None = None) -> jax.Array:
  """RLOO (arXiv 2402.14740): Â_i = r_i − mean_{j≠i} r_j = n/(n−1)·(r_i − mean r).

  n = number of valid samples of the group. [..., N] -> [..., N].
  """
  _, _, n, centred, informative = _group_stats(rewards, mask)
  return jnp.where(informative, centred * n / jnp.maximum(n - 1.0, 1.0), 0.0)
