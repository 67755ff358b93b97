"""The `signature` judge: responses share a cluster iff their task signatures are equal.

Signatures come from the task family's own strategy parser (e.g. Countdown's
operation-tree shape), so the clustering is exact; the task's DEGENERATE
signature and blank responses map to DEGENERATE_ID.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from explore_rl.rewards.clusters import first_appearance_ids, is_blank
from explore_rl.rewards.judges import Judge, Signatures
from explore_rl.tasks.base import DEGENERATE


class SignatureJudge(Judge):
  """Clusters by equality of the task's strategy signatures."""

  def cluster(
      self, prompt: str, responses: Sequence[str], *, signatures: Signatures = None
  ) -> np.ndarray:
    del prompt  # The signature already encodes everything the task knows.
    if signatures is None:
      raise ValueError(
          "the 'signature' judge needs the task's strategy signatures: pass "
          "signatures=[task signature of each response] (one hashable per response)"
      )
    if len(signatures) != len(responses):
      raise ValueError(f"{len(responses)} responses but {len(signatures)} signatures")
    degenerate = [
        is_blank(r) or (isinstance(s, str) and s == DEGENERATE)
        for r, s in zip(responses, signatures)
    ]
    return first_appearance_ids(signatures, degenerate)
