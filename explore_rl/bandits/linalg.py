"""Rank-one inverse updates and vectorised weighted norms for linear bandits.

Sherman–Morrison (docs/algorithms.md, multiset design):

  (V + a aᵀ)⁻¹ = V⁻¹ − V⁻¹a aᵀV⁻¹ / (1 + aᵀV⁻¹a),
  ‖y‖²_{(V+aaᵀ)⁻¹} = ‖y‖²_{V⁻¹} − (yᵀV⁻¹a)² / (1 + aᵀV⁻¹a).

The second identity, evaluated for every pair (direction y, candidate arm a) at once, is the inner
loop of the greedy designs in `explore_rl.bandits.design`: one matrix product, no per-arm loop.
"""
from __future__ import annotations

import numpy as np


def sq_norms(vectors: np.ndarray, inv: np.ndarray) -> np.ndarray:
  """‖y‖²_{inv} = yᵀ·inv·y for each row y of `vectors[..., P, d]`; returns `[..., P]`."""
  return np.einsum("...pi,ij,...pj->...p", vectors, inv, vectors)


def sherman_morrison_update(inv: np.ndarray, a: np.ndarray) -> np.ndarray:
  """(V + a aᵀ)⁻¹ from inv = V⁻¹ [d, d] and a [d]: V⁻¹ − V⁻¹a aᵀV⁻¹ / (1 + aᵀV⁻¹a)."""
  u = inv @ a  # [d]
  return inv - np.outer(u, u) / (1.0 + a @ u)


def sherman_morrison_downdate(inv: np.ndarray, a: np.ndarray) -> np.ndarray:
  """(V − a aᵀ)⁻¹ from inv = V⁻¹: V⁻¹ + V⁻¹a aᵀV⁻¹ / (1 − aᵀV⁻¹a) (requires aᵀV⁻¹a < 1)."""
  u = inv @ a  # [d]
  return inv + np.outer(u, u) / (1.0 - a @ u)


def updated_sq_norms(directions: np.ndarray, candidates: np.ndarray, inv: np.ndarray) -> np.ndarray:
  """‖y‖²_{(V + ccᵀ)⁻¹} for every direction y [P, d] and candidate c [K, d]; returns [P, K].

  Sherman–Morrison: ‖y‖²_{V⁻¹} − (yᵀV⁻¹c)² / (1 + cᵀV⁻¹c), with inv = V⁻¹.
  """
  cross = directions @ inv @ candidates.T  # [P, K]: yᵀV⁻¹c
  base = sq_norms(directions, inv)  # [P]
  lev = sq_norms(candidates, inv)  # [K]: cᵀV⁻¹c
  return base[:, None] - cross**2 / (1.0 + lev)[None, :]
