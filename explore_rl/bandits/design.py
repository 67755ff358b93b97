"""Greedy multiset designs for linear best-arm identification, solved with Sherman–Morrison.

A design picks a multiset A of n arms (rows of `candidates`) to add to the current Gram matrix V
(the information already collected) so as to minimise the worst weighted uncertainty

  f(A) = max_p  w_p · ‖y_p‖²_{(V + V(A))⁻¹},      V(A) = Σ_{a∈A} a aᵀ,

over a set of directions y_p with weights w_p (docs/algorithms.md, multiset design):

* plug-in design (Steepish Descent's proxy, seed 000): y = â* − a for a ≠ â*, w = 1/Δ̂(a)²,
  Δ̂(a) = max(ε, θ̂ᵀ(â* − a)), so f(A) = max_{a≠â*} ‖a − â*‖²_{(V+V(A))⁻¹} / Δ̂(a)²;
* XY design (Soare et al. 2014, arXiv 1409.6110): y ranges over differences of active arms, w = 1.

The exact argmin over the (K+n−1 choose n) multisets is combinatorial; `greedy_design` adds one
arm at a time, each step evaluating every candidate c at once through

  ‖y‖²_{(W+ccᵀ)⁻¹} = ‖y‖²_{W⁻¹} − (yᵀW⁻¹c)² / (1 + cᵀW⁻¹c)      (a [P, K] array),

then updates W⁻¹ by the same rank-one formula; an optional swap pass (remove one chosen arm by
the Sherman–Morrison downdate, re-insert the best candidate) refines the greedy multiset.
Ties in the max are broken by the weighted sum Σ_p w_p ‖y_p‖², so a step that cannot lower the
maximum still lowers the rest. `brute_force_design` is the exact reference for small instances.
"""
from __future__ import annotations

import itertools

import numpy as np

from explore_rl.bandits.linalg import sherman_morrison_downdate, sherman_morrison_update
from explore_rl.bandits.linalg import sq_norms, updated_sq_norms


def design_objective(gram: np.ndarray, candidates: np.ndarray, multiset, directions: np.ndarray,
                     weights: np.ndarray) -> float:
  """f(A) = max_p w_p ‖y_p‖²_{(V + V(A))⁻¹} by direct inversion (the reference formula).

  gram V [d, d] (positive definite), candidates [K, d], multiset: int indices [n],
  directions y [P, d], weights w [P].
  """
  chosen = candidates[np.asarray(multiset, dtype=int)]  # [n, d]
  inv = np.linalg.inv(gram + chosen.T @ chosen)
  return float(np.max(weights * sq_norms(directions, inv)))


def brute_force_design(gram, candidates, n, directions, weights, *, replace=True):
  """Exact argmin of f over all multisets (replace=True) or sets of size n; exponential in n.

  Returns (indices int[n], value).
  """
  k = len(candidates)
  combos = (itertools.combinations_with_replacement(range(k), n) if replace
            else itertools.combinations(range(k), n))
  best, best_value = None, np.inf
  for combo in combos:
    value = design_objective(gram, candidates, combo, directions, weights)
    if value < best_value:
      best, best_value = combo, value
  return np.asarray(best, dtype=int), best_value


def _pick(norms: np.ndarray, weights: np.ndarray, allowed: np.ndarray) -> tuple[int, float]:
  """argmin over candidates of max_p w_p·norms[p, c] (ties: smallest Σ_p), among `allowed`.

  norms [P, K], weights [P], allowed bool [K]. Returns (candidate index, its max value).
  """
  scaled = weights[:, None] * norms  # [P, K]
  worst = np.where(allowed, scaled.max(axis=0), np.inf)  # [K]
  total = np.where(allowed, scaled.sum(axis=0), np.inf)  # [K]
  best = worst.min()
  ties = worst <= best + 1e-12 * max(abs(best), 1e-300)
  c = int(np.argmin(np.where(ties, total, np.inf)))
  return c, float(worst[c])


def greedy_design(gram_inv: np.ndarray, candidates: np.ndarray, n: int, directions: np.ndarray,
                  weights: np.ndarray, *, replace: bool = True, swap_passes: int = 2,
                  exclude: np.ndarray | None = None) -> np.ndarray:
  """Greedy (+ swap refinement) minimiser of f(A) = max_p w_p ‖y_p‖²_{(V + V(A))⁻¹}.

  gram_inv V⁻¹ [d, d], candidates [K, d], directions [P, d], weights [P]; replace=False picks n
  distinct candidates; `exclude` bool [K] marks candidates never to pick. Returns int[n].
  Each greedy step costs one [P, K] Sherman–Morrison evaluation; each swap pass revisits the n
  chosen arms once (downdate, best re-insertion, keep if strictly better).
  """
  k = len(candidates)
  allowed = np.ones(k, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
  if allowed.sum() < (1 if replace else n):
    raise ValueError(f"cannot choose {n} arms from {int(allowed.sum())} allowed candidates")
  inv = np.array(gram_inv, dtype=np.float64)
  chosen: list[int] = []
  for _ in range(n):
    mask = allowed if replace else allowed & ~np.isin(np.arange(k), chosen)
    c, _ = _pick(updated_sq_norms(directions, candidates, inv), weights, mask)
    chosen.append(c)
    inv = sherman_morrison_update(inv, candidates[c])
  value = float(np.max(weights * sq_norms(directions, inv)))
  for _ in range(swap_passes):
    improved = False
    for i in range(n):
      removed = sherman_morrison_downdate(inv, candidates[chosen[i]])
      others = chosen[:i] + chosen[i + 1:]
      mask = allowed if replace else allowed & ~np.isin(np.arange(k), others)
      c, new_value = _pick(updated_sq_norms(directions, candidates, removed), weights, mask)
      if new_value < value * (1 - 1e-9):
        chosen[i], value, improved = c, new_value, True
        inv = sherman_morrison_update(removed, candidates[c])
    if not improved:
      break
  return np.asarray(chosen, dtype=int)


def plug_in_directions(arms: np.ndarray, theta_hat: np.ndarray, epsilon: float):
  """Directions and weights of the plug-in design for estimate θ̂.

  â* = argmax_a aᵀθ̂; y_a = â* − a and w_a = 1/Δ̂(a)², Δ̂(a) = max(ε, θ̂ᵀ(â* − a)), for a ≠ â*.
  arms [K, d], theta_hat [d]. Returns (best index, directions [K−1, d], weights [K−1]).
  """
  means = arms @ theta_hat  # [K]
  best = int(np.argmax(means))
  others = np.arange(len(arms)) != best
  gaps = np.maximum(epsilon, means[best] - means[others])  # [K-1]
  return best, arms[best][None, :] - arms[others], 1.0 / gaps**2


def pairwise_directions(arms: np.ndarray, active: np.ndarray) -> np.ndarray:
  """Differences x − x' over unordered pairs of active arms (the XY directions); [P, d]."""
  idx = np.flatnonzero(active)
  i, j = np.triu_indices(len(idx), k=1)
  return arms[idx[i]] - arms[idx[j]]
