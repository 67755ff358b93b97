"""CISPO, clipped IS-weight policy optimisation (MiniMax-M1, arXiv 2506.13585, eqs. 4-5).

PPO's clip zeroes the gradient of every token whose ratio left the trust region in the
direction of its advantage; CISPO instead clips the importance weight and detaches it,
so every token keeps a REINFORCE gradient, only its weight is bounded.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.policy_loss import LOG_RATIO_CLAMP, fp32_inputs, ratio_metrics

__all__ = ["cispo_loss"]


def cispo_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    rng: jax.Array | None = None,
    clip_eps_low: float = 1.0,
    clip_eps_high: float = 0.2,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """CISPO per-token loss (arXiv 2506.13585, eqs. 4-5):

      ρ  = exp(clamp(logp − old_logp, ±20))
      ŵ  = sg(clip(ρ, 1 − ε_low, 1 + ε_high))
      ℓ  = −ŵ·Â·logp,        so  ∂ℓ/∂logp = −ŵ·Â  on every valid token

  J = E[Σ_{i,t} ŵ Â log π / Σ_i |o_i|]: token-level normalisation, i.e. the `token-mean`
  aggregation. Defaults: ε_low = 1, so 1 − ε_low = 0 and the weight has no lower bound
  (the paper sets ε_low large and tunes only ε_high); ε_high = 0.2, the upper clip of
  verl's CISPO example [code] (the paper does not print the value it tuned).

  The value of ℓ is not a meaningful loss (it holds logp); its gradient is the estimator.
  `rng` is unused (shared call form). Shapes: logprobs, old_logprobs, mask [B, T];
  advantages [B] or [B, T]. Returns (per_token_loss [B, T] fp32, metrics): clip_frac
  (tokens whose weight was clipped), cispo_weight_mean (mean ŵ), approx_kl, ratio_mean,
  ratio_max.
  """
  del rng
  if not (clip_eps_low >= 0 and clip_eps_high >= 0):
    raise ValueError(f"CISPO clip ranges must be >= 0, got {clip_eps_low}, {clip_eps_high}")
  logp, old, adv, mask = fp32_inputs(logprobs, old_logprobs, advantages, mask)
  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  ratio = jax.lax.stop_gradient(jnp.exp(log_ratio))
  weight = jnp.clip(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high)
  loss = jnp.where(mask > 0, -weight * adv * logp, 0.0)
  return loss, {"clip_frac": masked_mean(weight != ratio, mask),
                "cispo_weight_mean": masked_mean(weight, mask), **ratio_metrics(log_ratio, mask)}
