"""Entropy control by covariance (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs",
arXiv 2505.22617): per-token covariance, Clip-Cov and KL-Cov.

Under natural policy gradient the entropy change is ΔH ≈ −η·Cov(log π(a|s), A(s, a)):
a few tokens with high probability AND high advantage drive entropy collapse.
Both methods find them with the per-token centred cross-product

    Cov_i = (logp_i − mean logp)·(A_i − mean A)      (both detached)

and restrain only those tokens: Clip-Cov drops their gradient, KL-Cov pulls them
back to the rollout policy with an |logp − old_logp| penalty.

Batch scope: every mean and count (N_valid, the eligible set, the top-k) is over
ALL valid tokens of the arrays passed in. The reference (verl) selects per
micro-batch on each device; the trainer chooses over the whole (global) mini-batch
before it splits it into micro-batches (training/update.py: jitted and sharded, XLA
inserts the cross-shard sums and the global sort) and passes the choice back as
`selected`, so the selection depends neither on the micro-batch count nor on the
devices.

Static shapes: tokens are ranked by a sort (−inf for ineligible ones) and kept when
their rank is below a traced count; Clip-Cov's uniformly random subset is the top
of a ranking by PRNG noise.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.policy_loss import LOG_RATIO_CLAMP, fp32_inputs, ratio_metrics

__all__ = [
    "clip_cov_loss",
    "covariance_stats",
    "kl_cov_loss",
    "selection_count",
    "token_covariance",
    "top_k_mask",
]


def token_covariance(logprobs: jax.Array, advantages: jax.Array, mask: jax.Array) -> jax.Array:
  """Cov_i = (logp_i − mean logp)(A_i − mean A) over the valid tokens; 0 under padding.

  logprobs, mask [B, T]; advantages [B] or [B, T] -> [B, T] fp32, detached.
  """
  logp, _, adv, mask = fp32_inputs(logprobs, logprobs, advantages, mask)
  logp, adv = jax.lax.stop_gradient(logp), jax.lax.stop_gradient(adv)
  cov = (logp - masked_mean(logp, mask)) * (adv - masked_mean(adv, mask))
  return jnp.where(mask > 0, cov, 0.0)


def selection_count(ratio: float, num_valid: jax.Array) -> jax.Array:
  """max(⌊ratio·N_valid⌋, 1) as a traced float count.

  ratio·N is formed in fp32, where e.g. 2e-4 is not exact and 10000·2e-4 would
  floor to 1; a relative slack of 1e-6 (far above fp32 rounding, far below any
  real fractional part of a token count) restores the intended ⌊ratio·N⌋ = 2.
  """
  return jnp.maximum(jnp.floor(num_valid * ratio * (1.0 + 1e-6)), 1.0)


def top_k_mask(scores: jax.Array, k: jax.Array) -> jax.Array:
  """True for the k largest entries of `scores` (any shape; ties go to the lower flat index)."""
  flat = scores.reshape(-1)
  order = jnp.argsort(-flat, stable=True)
  rank = jnp.zeros(flat.shape, jnp.int32).at[order].set(jnp.arange(flat.size, dtype=jnp.int32))
  return (rank < k).reshape(scores.shape)


def covariance_stats(
    cov: jax.Array, mask: jax.Array, *, top_fractions: tuple[float, ...] = (0.002, 0.02)
) -> dict[str, jax.Array]:
  """Covariance metrics: `cov_mean` over valid tokens, and for each q in `top_fractions`
  `cov_top{q:g}_mean`, the mean of the max(⌊q·N_valid⌋, 1) largest valid covariances
  (the paper's view: a tiny fraction of tokens carries outsized covariance). 0 when
  no token is valid. cov, mask [B, T] -> dict of fp32 scalars.
  """
  mask = mask.astype(jnp.float32)
  cov = jax.lax.stop_gradient(cov.astype(jnp.float32))
  n = jnp.sum(mask)
  ranked = -jnp.sort(-jnp.where(mask > 0, cov, -jnp.inf).reshape(-1))  # descending
  position = jnp.arange(ranked.size)
  stats = {"cov_mean": masked_mean(cov, mask)}
  for q in top_fractions:
    k = jnp.minimum(selection_count(q, n), n)
    top_sum = jnp.sum(jnp.where(position < k, ranked, 0.0))
    stats[f"cov_top{q:g}_mean"] = top_sum / jnp.maximum(k, 1.0)
  return stats


def clip_cov_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    rng: jax.Array,
    ratio: float = 2e-4,
    cov_lb: float = 1.0,
    cov_ub: float = 5.0,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
    selected: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Clip-Cov (arXiv 2505.22617; verl `compute_policy_loss_clip_cov`).

      pg1 = −Â·ρ,  pg2 = −Â·clip(ρ, 1 − ε_low, 1 + ε_high),  ρ = exp(clamp(logp − old, ±20))
      eligible = valid ∧ ¬(pg2 > pg1) ∧ cov_lb < Cov < cov_ub
      selected = a uniformly random subset of min(max(⌊ratio·N_valid⌋, 1), #eligible)
                 eligible tokens (ranked by uniform noise from `rng`)
      ℓ = 0 on selected tokens (loss and gradient), max(pg1, pg2) elsewhere; no dual clip.

  Defaults: ratio 2e-4, (cov_lb, cov_ub) = (1, 5) from the paper; ε = 0.2 is PPO's
  usual range (the paper's runs widen it to 1 on both sides, leaving the
  covariance clip as the main restraint). Use a fresh `rng` every step.
  `selected` (bool [B, T]): the tokens to zero, chosen beforehand over a larger batch;
  None: chosen here. Shapes: [B, T] (advantages [B] or [B, T]). Returns (per_token_loss
  [B, T] fp32, aux) with aux["selected"] the bool [B, T] mask of zeroed tokens and scalar
  metrics selected_frac, clip_frac, approx_kl, ratio_mean, ratio_max and
  `covariance_stats`.
  """
  logp, old, adv, mask = fp32_inputs(logprobs, old_logprobs, advantages, mask)
  valid = mask > 0
  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  rho = jnp.exp(log_ratio)
  pg1 = -adv * rho
  pg2 = -adv * jnp.clip(rho, 1.0 - clip_eps_low, 1.0 + clip_eps_high)
  clipped = valid & (pg2 > pg1)
  cov = token_covariance(logp, adv, mask)
  if selected is None:  # chosen here, over the arrays passed
    eligible = valid & ~clipped & (cov > cov_lb) & (cov < cov_ub)
    count = jnp.minimum(selection_count(ratio, jnp.sum(mask)), jnp.sum(eligible))
    noise = jax.random.uniform(rng, eligible.shape)
    selected = eligible & top_k_mask(jnp.where(eligible, noise, -jnp.inf), count)
  selected = valid & selected
  loss = jnp.where(valid & ~selected, jnp.maximum(pg1, pg2), 0.0)
  metrics = {
      "selected_frac": masked_mean(selected, mask),
      "clip_frac": masked_mean(clipped, mask),
      **ratio_metrics(log_ratio, mask),
      **covariance_stats(cov, mask),
  }
  return loss, {"selected": selected, **metrics}


def kl_cov_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    ratio: float = 2e-3,
    kl_coef: float = 1.0,
    selected: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """KL-Cov (arXiv 2505.22617; verl `compute_policy_loss_kl_cov`).

      ℓ = −Â·ρ                                  (no PPO clip at all)
      ℓ += kl_coef·|logp − old_logp|            on the top min(max(⌊ratio·N_valid⌋, 1), N_valid)
                                                valid tokens by Cov (ties: lower flat index)

  so ∂ℓ/∂logp = −Â·ρ + kl_coef·sign(logp − old_logp) on selected tokens and −Â·ρ
  elsewhere. Defaults: ratio 2e-3 (the paper's 7B runs; 2e-4 at 32B), kl_coef 1
  (verl's own default is 0.1). `selected` (bool [B, T]): the tokens to penalise, chosen
  beforehand over a larger batch; None: chosen here. Shapes: [B, T] (advantages [B] or
  [B, T]). Returns
  (per_token_loss [B, T] fp32, aux) with aux["selected"] the bool [B, T] mask of
  penalised tokens and scalar metrics selected_frac, kl_abs (mean |logp − old|),
  approx_kl, ratio_mean, ratio_max and `covariance_stats`.
  """
  logp, old, adv, mask = fp32_inputs(logprobs, old_logprobs, advantages, mask)
  valid = mask > 0
  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  abs_kl = jnp.abs(logp - old)
  cov = token_covariance(logp, adv, mask)
  if selected is None:  # chosen here, over the arrays passed
    count = jnp.minimum(selection_count(ratio, jnp.sum(mask)), jnp.sum(valid))
    selected = top_k_mask(jnp.where(valid, cov, -jnp.inf), count)
  selected = valid & selected
  loss = -adv * jnp.exp(log_ratio) + jnp.where(selected, kl_coef * abs_kl, 0.0)
  loss = jnp.where(valid, loss, 0.0)
  metrics = {
      "selected_frac": masked_mean(selected, mask),
      "kl_abs": masked_mean(abs_kl, mask),
      **ratio_metrics(log_ratio, mask),
      **covariance_stats(cov, mask),
  }
  return loss, {"selected": selected, **metrics}


# The POLICY_LOSSES call form, rng optional. A loss that takes `selected` chooses tokens:
# its metrics hold the bool [B, T] `selected` it acted on, and given `selected` (chosen
# over the trainer's whole mini-batch, objectives/loss_terms.py) it acts on those.
def clip_cov_policy_loss(logprobs, old_logprobs, advantages, mask, *, rng=None, selected=None,
                         **hparams):
  if rng is None and selected is None:
    raise ValueError("clip_cov picks random tokens: pass rng=<a fresh PRNG key per step>")
  return clip_cov_loss(logprobs, old_logprobs, advantages, mask, rng=rng, selected=selected,
                       **hparams)


def kl_cov_policy_loss(logprobs, old_logprobs, advantages, mask, *, rng=None, selected=None,
                       **hparams):
  del rng  # deterministic top-k
  return kl_cov_loss(logprobs, old_logprobs, advantages, mask, selected=selected, **hparams)
