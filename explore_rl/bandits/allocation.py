"""Continuous XY-optimal allocations (Frank–Wolfe) and their rounding to pull counts, for RAGE.

RAGE (Fiez, Jain, Jamieson, Ratliff 2019, arXiv 1906.08399) plays in phase ℓ the allocation

  λ_ℓ = argmin_{λ ∈ simplex(K)} max_{y ∈ Y(S_ℓ)} ‖y‖²_{A(λ)⁻¹},   A(λ) = Σ_i λ_i x_i x_iᵀ,

over the differences Y(S_ℓ) = {x − x' : x, x' ∈ S_ℓ} of the active arms; ρ_ℓ is the optimum.
`xy_allocation` runs Frank–Wolfe on the max: with A⁻¹ at the current λ and the worst direction
y* = argmax_y ‖y‖²_{A⁻¹}, the gradient coordinate is ∂‖y*‖²_{A⁻¹}/∂λ_i = −(y*ᵀA⁻¹x_i)², so the
step moves mass γ_k = 2/(k+2) to i* = argmax_i (y*ᵀA⁻¹x_i)². Starting from uniform λ (the arms
span R^d) keeps A(λ) positive definite. `round_allocation` turns N·λ into integer counts.
"""
from __future__ import annotations

import numpy as np

from explore_rl.bandits.linalg import sq_norms


def xy_allocation(arms: np.ndarray, directions: np.ndarray, *, iters: int = 300):
  """Frank–Wolfe for min_λ max_y ‖y‖²_{A(λ)⁻¹}. arms [K, d], directions [P, d].

  Returns (λ [K], ρ = max_y ‖y‖²_{A(λ)⁻¹} at the returned λ).
  """
  k = len(arms)
  lam = np.full(k, 1.0 / k)
  best_lam, best_rho = lam, np.inf
  for step in range(iters):
    inv = np.linalg.inv(arms.T @ (lam[:, None] * arms))  # [d, d]
    norms = sq_norms(directions, inv)  # [P]
    worst = int(np.argmax(norms))
    if norms[worst] < best_rho:
      best_lam, best_rho = lam, float(norms[worst])
    grad = (arms @ (inv @ directions[worst])) ** 2  # [K]: (y*ᵀA⁻¹x_i)²
    gamma = 2.0 / (step + 3.0)
    lam = (1.0 - gamma) * lam
    lam[int(np.argmax(grad))] += gamma
  return best_lam, best_rho


def round_allocation(lam: np.ndarray, total: int) -> np.ndarray:
  """Integer counts [K] summing to `total`: ⌊N λ_i⌋ plus one for the largest remainders."""
  raw = total * np.asarray(lam, dtype=np.float64)
  counts = np.floor(raw).astype(int)
  short = total - counts.sum()
  if short > 0:
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
  return counts
