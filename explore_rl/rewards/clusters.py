"""Cluster-id conventions shared by every diversity judge.

A judge labels the N responses of one prompt with int32 ids: ids >= 0 are
numbered in order of first appearance (so equal partitions give equal arrays),
and degenerate responses get DEGENERATE_ID (-1), which set objectives do not
count as a distinct strategy (Poly-EPO, arXiv 2604.17654).
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from explore_rl.tasks.base import DEGENERATE_ID


def is_blank(response: str) -> bool:
  """Empty or whitespace-only responses are degenerate for every judge."""
  return not response.strip()


def first_appearance_ids(keys: Sequence[Hashable], degenerate: Sequence[bool]) -> np.ndarray:
  """Relabels `keys[N]` as int32[N] ids 0, 1, ... in order of first appearance.

  Responses with equal keys share an id; `degenerate[i]` forces DEGENERATE_ID.
  """
  if len(keys) != len(degenerate):
    raise ValueError(f"{len(keys)} keys but {len(degenerate)} degenerate flags")
  table: dict[Hashable, int] = {}
  ids = np.full(len(keys), DEGENERATE_ID, np.int32)  # [N]
  for i, (key, bad) in enumerate(zip(keys, degenerate)):
    if not bad:
      ids[i] = table.setdefault(key, len(table))
  return ids


def singleton_ids(responses: Sequence[str]) -> np.ndarray:
  """One cluster per non-blank response (the judges' fallback): int32[N]."""
  return first_appearance_ids(range(len(responses)), [is_blank(r) for r in responses])
