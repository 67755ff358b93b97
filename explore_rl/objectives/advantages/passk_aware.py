"""Pass@k / max@k-aware advantages: PKPO, pass@k analytic, BoN-aware, verl grpo_passk.

Convention as in `group.py`: `rewards[..., N]` holds the N samples of one prompt on
the last axis; every sample is valid (N static); output fp32 `[..., N]`. Binary
estimators count a sample as correct when its reward is > 0. k is a Python int.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.combinatorics import order_statistic_weights, pass_at_k
from explore_rl.objectives.advantages.group import rloo

__all__ = ["bon_advantages", "grpo_passk", "passk_analytic", "pkpo"]


def _check_k(k: int, num_samples: int) -> None:
  if not 1 <= k <= num_samples:
    raise ValueError(f"need 1 <= k <= N, got k={k}, N={num_samples}")


def pkpo(rewards: jax.Array, k: int) -> jax.Array:
  """PKPO's variance-reduced max@k gradient weights s^(loo−1) (arXiv 2505.15201).

      s_i = (1/C(n,k)) Σ_{|I|=k, i∈I} (max_I g − max_{I∖i} g)

  A term is non-zero only when i is the maximum of I, where it is g_i minus the
  runner-up. With g sorted ascending (1-indexed) and gaps d_m = g_(m+1) − g_(m):

      s_(i) = Σ_{j<i} C(j−1,k−2)/C(n,k) (g_(i) − g_(j)) = Σ_{m<i} d_m · C(m,k−1)/C(n,k),

  a cumulative sum of non-negative terms: O(k + n log n), exactly 0 for tied
  rewards, never negative. Binary and continuous rewards alike (max of binary
  rewards is pass). k = n gives the best sample g_max − g_second (verl grpo_passk).
  k = 1 has no runner-up: leave-one-out mean centring, scaled (r_i − mean_{j≠i} r)/n.

  Scale: E[Σ_i ∇log π(y_i) s_i] = ∇ E[max of k samples] with constant 1 for every
  k (the 1/n at k = 1 keeps it so, so annealing k does not rescale the step).
  rewards[..., n] -> [..., n] fp32.
  """
  rewards = jnp.asarray(rewards).astype(jnp.float32)  # [..., n]
  num_samples = rewards.shape[-1]
  _check_k(k, num_samples)
  if k == 1:
    return rloo(rewards) / num_samples
  order = jnp.argsort(rewards, axis=-1)  # [..., n]
  g = jnp.take_along_axis(rewards, order, axis=-1)  # ascending
  weights = jnp.asarray(order_statistic_weights(num_samples, k)[1:], jnp.float32)  # C(m,k−1)/C(n,k)
  gains = jnp.cumsum(jnp.diff(g, axis=-1) * weights, axis=-1)  # [..., n−1]
  s_sorted = jnp.concatenate([jnp.zeros_like(g[..., :1]), gains], axis=-1)  # [..., n]
  return jnp.take_along_axis(s_sorted, jnp.argsort(order, axis=-1), axis=-1)


def passk_analytic(rewards: jax.Array, k: int) -> jax.Array:
  """Pass@k Training's analytic advantages (Chen et al., arXiv 2508.10751).

  With N samples, N_neg incorrect: R̄ = 1 − C(N_neg,k)/C(N,k), σ = sqrt(R̄(1−R̄)),
  Â_pos = (1 − R̄)/σ, Â_neg = (1 − R̄ − C(N_neg−1,k−1)/C(N−1,k−1))/σ: the mean, over
  the k-subsets holding a sample, of the subset's pass minus R̄, over the std of
  subset passes. Groups whose every k-subset passes or fails (σ = 0) get 0.
  rewards[..., N] -> [..., N] fp32.
  """
  rewards = jnp.asarray(rewards)
  num_samples = rewards.shape[-1]
  _check_k(k, num_samples)
  correct = rewards > 0  # [..., N]
  c = jnp.sum(correct, axis=-1, keepdims=True).astype(jnp.float32)  # [..., 1]
  mean = pass_at_k(num_samples, c, k)  # R̄
  # P[a (k−1)-subset of the other N−1 samples has no correct one | sample incorrect].
  all_fail = 1.0 - pass_at_k(num_samples - 1, c, k - 1)
  var = mean * (1.0 - mean)
  informative = var > 0
  std = jnp.sqrt(jnp.where(informative, var, 1.0))  # double where: sqrt'(0) = inf
  adv = jnp.where(correct, 1.0 - mean, 1.0 - mean - all_fail) / std
  return jnp.where(informative, adv, 0.0).astype(jnp.float32)


def bon_advantages(rewards: jax.Array, *, n_bon: int, clip: float) -> jax.Array:
  """BoN-aware weights (Chow et al., arXiv 2412.15287; docs/algorithms.md, "Pass@k").

  With p the group's failure rate (incorrect / N), correct samples get
  +min(n_bon p^(n_bon−1)/(1 − p^n_bon), clip), incorrect ones −min(n_bon p/(1−p), clip):
  both are positive multiples of the pass@n_bon direction −∇p. Neither has a finite
  limit everywhere (the negative weight diverges as p → 1), hence the clip.
  rewards[..., N] -> [..., N] fp32.
  """
  rewards = jnp.asarray(rewards)
  correct = rewards > 0  # [..., N]
  p = 1.0 - jnp.mean(correct.astype(jnp.float32), axis=-1, keepdims=True)  # [..., 1]
  solvable = p < 1.0  # double where: both weights divide by 0 at p = 1
  p_safe = jnp.where(solvable, p, 0.0)
  positive = n_bon * p_safe ** (n_bon - 1) / (1.0 - p_safe**n_bon)
  negative = jnp.where(solvable, n_bon * p_safe / (1.0 - p_safe), clip)
  return jnp.where(correct, jnp.minimum(positive, clip), -jnp.minimum(negative, clip))


def grpo_passk(rewards: jax.Array) -> jax.Array:
  """verl's grpo_passk: the best sample gets r_max − r_second, every other one 0.

  Ties for the maximum go to the first index (and then give 0). [..., N≥2] -> [..., N].
  """
  rewards = jnp.asarray(rewards).astype(jnp.float32)  # [..., N]
  num_samples = rewards.shape[-1]
  if num_samples < 2:
    raise ValueError(f"grpo_passk needs at least 2 samples per group, got {num_samples}")
  top, index = jax.lax.top_k(rewards, 2)  # [..., 2]
  best = jax.nn.one_hot(index[..., 0], num_samples, dtype=jnp.float32)  # [..., N]
  return best * (top[..., :1] - top[..., 1:])
