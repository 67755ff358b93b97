"""Agglomerative threshold clustering on a similarity matrix (deterministic).

Start from singletons; repeatedly merge the two clusters with the highest
linkage similarity while it is >= `threshold`:
  average:  s(A, B) = mean_{a∈A, b∈B} s(a, b)   (UPGMA)
  complete: s(A, B) = min_{a∈A, b∈B} s(a, b)
both updated with the Lance–Williams recurrence. Ties go to the lowest (row,
column) pair, so equal inputs always give equal clusters. Equivalent to cutting
scipy's `linkage(1 - s, method)` dendrogram at distance 1 - threshold.
"""
from __future__ import annotations

import numpy as np

from explore_rl.rewards.clusters import first_appearance_ids

LINKAGES = ("average", "complete")


def agglomerative_clusters(similarity: np.ndarray, *, threshold: float,
                           linkage: str = "average") -> np.ndarray:
  """Clusters N items from `similarity[N, N]`: int32[N] ids in first-appearance order."""
  if linkage not in LINKAGES:
    raise ValueError(f"unknown linkage {linkage!r}; valid: {', '.join(LINKAGES)}")
  link = np.array(similarity, np.float64)  # [N, N], rows/cols of merged clusters updated in place
  n = link.shape[0]
  if link.shape != (n, n):
    raise ValueError(f"similarity must be square, got shape {link.shape}")
  np.fill_diagonal(link, -np.inf)
  labels = np.arange(n)
  size = np.ones(n)
  active = np.ones(n, bool)
  for _ in range(n - 1):
    live = np.where(active[:, None] & active[None, :], link, -np.inf)
    a, b = divmod(int(np.argmax(live)), n)  # First maximum in row-major order: a < b.
    if not live[a, b] >= threshold:  # Also stops on NaN.
      break
    if linkage == "average":
      merged = (size[a] * link[a] + size[b] * link[b]) / (size[a] + size[b])
    else:
      merged = np.minimum(link[a], link[b])
    link[a], link[:, a] = merged, merged
    link[a, a] = -np.inf
    size[a] += size[b]
    active[b] = False
    labels[labels == b] = a
  return first_appearance_ids(labels.tolist(), [False] * n)
