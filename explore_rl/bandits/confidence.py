"""Anytime confidence ellipsoid, stopping rule and elimination for linear best-arm identification.

Least squares on all pulls so far: V_t = Σ_s x_s x_sᵀ (including a deterministic burn-in that
spans R^d, with Gram V_0), θ̂_t = V_t⁻¹ Σ_s x_s r_s, rewards r = xᵀθ + η with σ-sub-Gaussian η.

Confidence radius. The self-normalised bound (Abbasi-Yadkori, Pál, Szepesvári 2011, Thm 1,
arXiv 1102.2670) with the fixed regulariser V_0 gives, with probability ≥ 1 − δ, for all t,
‖S_t‖²_{(V_0+V_t)⁻¹} ≤ 2σ² log(det(V_0+V_t)^{1/2} det(V_0)^{−1/2} / δ) where S_t = Σ_s η_s x_s.
Because V_0 ⪯ V_t, V_t⁻¹ ⪯ 2 (V_0+V_t)⁻¹, and θ̂_t − θ = V_t⁻¹S_t, so on that event

  |yᵀ(θ̂_t − θ)| ≤ C_t ‖y‖_{V_t⁻¹}  for every y,
  C_t² = 4σ² ( log(1/δ) + ½ log det(V_0 + V_t) − ½ log det V_0 ).

It holds for any adaptive choice of arms, so every strategy shares it.

Stopping rule (a GLR test with this threshold): with â* = argmax_a aᵀθ̂_t, stop when

  θ̂_tᵀ(â* − a) > C_t ‖â* − a‖_{V_t⁻¹}   for every a ≠ â*,

i.e. min_{a≠â*} Δ̂(a)² / (2‖â* − a‖²_{V_t⁻¹}) > C_t²/2. On the event above every a ≠ â* then has
θᵀ(â* − a) > 0, so the returned arm is the best with probability ≥ 1 − δ (arms with identical
mean are never separated, so the rule needs a unique best arm to stop).

Elimination (RAGE / XY-adaptive active sets): arm a is dropped once some b has
θ̂_tᵀ(b − a) > C_t ‖b − a‖_{V_t⁻¹}; on the same event a is then truly suboptimal.
"""
from __future__ import annotations

import numpy as np

from explore_rl.bandits.linalg import sq_norms


def confidence_radius(gram: np.ndarray, burn_in_gram: np.ndarray, *, delta: float,
                      noise: float) -> float:
  """C_t = sqrt(4σ² (log(1/δ) + ½ log det(V_0 + V_t) − ½ log det V_0)); gram V_t, burn_in V_0."""
  _, logdet = np.linalg.slogdet(burn_in_gram + gram)
  _, logdet0 = np.linalg.slogdet(burn_in_gram)
  return float(np.sqrt(4.0 * noise**2 * (np.log(1.0 / delta) + 0.5 * (logdet - logdet0))))


def should_stop(arms: np.ndarray, theta_hat: np.ndarray, gram_inv: np.ndarray,
                radius: float) -> tuple[bool, int]:
  """GLR stop: θ̂ᵀ(â* − a) > C ‖â* − a‖_{V⁻¹} for all a ≠ â*. arms [K, d]. Returns (stop, â*)."""
  means = arms @ theta_hat  # [K]
  best = int(np.argmax(means))
  diffs = arms[best][None, :] - arms  # [K, d]
  width = radius * np.sqrt(np.maximum(sq_norms(diffs, gram_inv), 0.0))  # [K]
  gaps = means[best] - means  # [K]
  others = np.arange(len(arms)) != best
  return bool(np.all(gaps[others] > width[others])), best


def surviving_arms(arms: np.ndarray, theta_hat: np.ndarray, gram_inv: np.ndarray, radius: float,
                   active: np.ndarray) -> np.ndarray:
  """Active arms not eliminated: a stays unless ∃ active b, θ̂ᵀ(b − a) > C ‖b − a‖_{V⁻¹}.

  arms [K, d], active bool [K]. Returns bool [K] (a subset of `active`, never empty).
  """
  diffs = arms[None, :, :] - arms[:, None, :]  # [K(a), K(b), d]: b − a
  width = radius * np.sqrt(np.maximum(sq_norms(diffs, gram_inv), 0.0))  # [K, K]
  means = arms @ theta_hat
  beaten = ((means[None, :] - means[:, None]) > width) & active[None, :]  # [a, b]
  keep = active & ~beaten.any(axis=1)
  if not keep.any():  # cannot happen for a finite radius (the empirical best is never beaten)
    keep = active.copy()
  return keep
