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

Elimination and the stopping rule. S_0 = all arms; after each round

  S_t = S_{t−1} ∖ {a : ∃ b ∈ S_{t−1}, θ̂_tᵀ(b − a) > C_t ‖b − a‖_{V_t⁻¹}},

and the run stops when |S_t| = 1, returning its arm. On the event above every eliminated arm is
truly suboptimal (θᵀ(b − a) > 0), at whatever time it was eliminated, so the survivor is the best
arm with probability ≥ 1 − δ. The rule contains the GLR test with threshold C_t²/2: when
min_{a≠â*} Δ̂(a)² / (2‖â* − a‖²_{V_t⁻¹}) > C_t²/2 for an active empirical best â*, it eliminates
every other arm at once. S_t never empties (the empirical best of S_{t−1} is never beaten), and
arms with identical means are never separated, so stopping needs a unique best arm.
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
