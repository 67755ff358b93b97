"""Greedy multiset designs for linear best-arm identification, solved with Sherman–Morrison.

A design picks a multiset A of n arms (rows of `candidates`) to add to the current Gram matrix V
(the information already collected) so as to minimise the worst weighted uncertainty

  f(A) = max_p  w_p · ‖y_p‖²_{(V + V(A))⁻¹},      V(A) = Σ_{a∈A} a aᵀ,

over a set of directions y_p with weights w_p (docs/algorithms.md, multiset design):

* plug-in design (Steepish Descent's proxy): â* the empirical best surviving arm, y = â* − a
  for surviving a ≠ â*, w = 1/Δ̂(a)², Δ̂(a) = max(ε, θ̂ᵀ(â* − a)), so
  f(A) = max_{a∈S, a≠â*} ‖a − â*‖²_{(V+V(A))⁻¹} / Δ̂(a)²;
* XY design (Soare et al. 2014, arXiv 1409.6110): y ranges over differences of active arms, w = 1.

The exact argmin over the (K+n−1 choose n) multisets is combinatorial; `greedy_design` adds one
arm at a time, each step evaluating every candidate c at once through

  ‖y‖²_{(W+ccᵀ)⁻¹} = ‖y‖²_{W⁻¹} − (yᵀW⁻¹c)² / (1 + cᵀW⁻¹c)      (a [P, K] array),

then updates W⁻¹ by the same rank-one formula. Greedy steps on a max are myopic, so by default
one chain starts from each possible first arm (all chains advance together as a batch) and the
best is refined by swap passes (remove one chosen arm by the Sherman–Morrison downdate
(W − ccᵀ)⁻¹ = W⁻¹ + W⁻¹ccᵀW⁻¹/(1 − cᵀW⁻¹c), re-insert the best candidate). Tested against
brute force (tests/bandits/test_design.py): equal on almost all random small instances, never
worse than a factor 1.1.
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


def _pick(norms: np.ndarray, weights: np.ndarray, allowed: np.ndarray):
  """Per chain r: argmin_c max_p w_p·norms[r, p, c] (ties: smallest Σ_p) among allowed[r].

  norms [R, P, K], weights [P], allowed bool [R, K]. Returns (indices int[R], max values [R]).
  """
  scaled = weights[None, :, None] * norms  # [R, P, K]
  worst = np.where(allowed, scaled.max(axis=1), np.inf)  # [R, K]
  total = np.where(allowed, scaled.sum(axis=1), np.inf)  # [R, K]
  best = worst.min(axis=1, keepdims=True)  # [R, 1]
  ties = worst <= best + 1e-12 * np.maximum(np.abs(best), 1e-300)
  c = np.argmin(np.where(ties, total, np.inf), axis=1)  # [R]
  return c, worst[np.arange(len(c)), c]


def _batched_norms(directions, candidates, inv):
  """‖y‖²_{(W_r + ccᵀ)⁻¹} for chains r: inv [R, d, d] → [R, P, K] (Sherman–Morrison)."""
  dinv = directions @ inv  # [R, P, d]: yᵀW⁻¹
  cross = dinv @ candidates.T  # [R, P, K]: yᵀW⁻¹c
  base = np.sum(dinv * directions, axis=-1)  # [R, P]: ‖y‖²_{W⁻¹}
  lev = np.sum((candidates @ inv) * candidates, axis=-1)  # [R, K]: cᵀW⁻¹c
  return base[:, :, None] - cross**2 / (1.0 + lev)[:, None, :]


def _batched_update(inv, a):
  """Sherman–Morrison per chain: inv [R, d, d], a [R, d] → (W_r + a_r a_rᵀ)⁻¹."""
  u = np.einsum("rij,rj->ri", inv, a)  # [R, d]
  return inv - u[:, :, None] * u[:, None, :] / (1.0 + np.einsum("ri,ri->r", a, u))[:, None, None]


def greedy_design(gram_inv: np.ndarray, candidates: np.ndarray, n: int, directions: np.ndarray,
                  weights: np.ndarray, *, replace: bool = True, restarts: bool = True,
                  swap_passes: int = 2, exclude: np.ndarray | None = None) -> np.ndarray:
  """Greedy (+ restarts, + swap refinement) minimiser of f(A) = max_p w_p ‖y_p‖²_{(V+V(A))⁻¹}.

  gram_inv V⁻¹ [d, d], candidates [K, d], directions [P, d], weights [P]; replace=False picks n
  distinct candidates; `exclude` bool [K] marks candidates never to pick. Returns int[n].

  restarts=True runs one greedy chain per allowed first arm, all chains at once (a batch of
  inverses [R, d, d]; each step is one [R, P, K] Sherman–Morrison evaluation), and keeps the
  best; restarts=False is the single greedy chain. Each swap pass then revisits the n chosen arms
  (downdate, best re-insertion, kept if strictly better).
  """
  k = len(candidates)
  allowed = np.ones(k, dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
  if allowed.sum() < (1 if replace else n):
    raise ValueError(f"cannot choose {n} arms from {int(allowed.sum())} allowed candidates")
  gram_inv = np.asarray(gram_inv, dtype=np.float64)
  if restarts:
    first = np.flatnonzero(allowed)  # [R]
    inv = _batched_update(np.broadcast_to(gram_inv, (len(first),) + gram_inv.shape),
                          candidates[first])
    chains = [first]
  else:
    inv, chains = gram_inv[None], []
  rows = np.arange(len(inv))
  while len(chains) < n:
    mask = np.broadcast_to(allowed, (len(inv), k)).copy()
    if not replace:
      for chosen in chains:
        mask[rows, chosen] = False
    c, _ = _pick(_batched_norms(directions, candidates, inv), weights, mask)
    chains.append(c)
    inv = _batched_update(inv, candidates[c])
  values = np.max(weights * np.sum((directions @ inv) * directions, axis=-1), axis=1)  # [R]
  r = int(np.argmin(values))
  chosen, inv, value = [int(ch[r]) for ch in chains], inv[r], float(values[r])
  for _ in range(swap_passes):
    improved = False
    for i in range(n):
      removed = sherman_morrison_downdate(inv, candidates[chosen[i]])
      mask = allowed.copy()
      if not replace:
        mask[chosen[:i] + chosen[i + 1:]] = False
      c, new_value = _pick(updated_sq_norms(directions, candidates, removed)[None], weights,
                           mask[None])
      if new_value[0] < value * (1 - 1e-9):
        chosen[i], value, improved = int(c[0]), float(new_value[0]), True
        inv = sherman_morrison_update(removed, candidates[chosen[i]])
    if not improved:
      break
  return np.asarray(chosen, dtype=int)


def plug_in_directions(arms: np.ndarray, theta_hat: np.ndarray, epsilon: float,
                       active: np.ndarray | None = None):
  """Directions and weights of the plug-in design for estimate θ̂ over the surviving arms S.

  â* = argmax_{a ∈ S} aᵀθ̂; y_a = â* − a and w_a = 1/Δ̂(a)², Δ̂(a) = max(ε, θ̂ᵀ(â* − a)), for
  a ∈ S, a ≠ â*. An eliminated arm is neither â* nor a direction: the stopping rule needs only
  S to shrink, and an eliminated arm that θ̂ now ranks first would otherwise take over the
  design (as â*, or with the floor weight 1/ε² on its direction).
  arms [K, d], theta_hat [d], active bool [K] (S; None: every arm). Returns (best index,
  directions [|S|−1, d], weights [|S|−1]).
  """
  active = np.ones(len(arms), dtype=bool) if active is None else np.asarray(active, dtype=bool)
  means = arms @ theta_hat  # [K]
  best = int(np.argmax(np.where(active, means, -np.inf)))
  others = active & (np.arange(len(arms)) != best)
  gaps = np.maximum(epsilon, means[best] - means[others])  # [|S|-1]
  return best, arms[best][None, :] - arms[others], 1.0 / gaps**2


def pairwise_directions(arms: np.ndarray, active: np.ndarray) -> np.ndarray:
  """Differences x − x' over unordered pairs of active arms (the XY directions); [P, d]."""
  idx = np.flatnonzero(active)
  i, j = np.triu_indices(len(idx), k=1)
  return arms[idx[i]] - arms[idx[j]]
