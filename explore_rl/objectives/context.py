"""The per-group context an advantage estimator or reward shaper may ask for.

One RL step has B prompt groups of N samples. Besides the verifier's rewards,
some objectives need more: set RL needs strategy-cluster ids (a judge call), DRA
and EVOL need response embeddings (a MiniLM pass), EVOL needs answer ids, DAPO's
overlong shaping needs response lengths, sampled-subset set RL needs a PRNG key.
Each component declares the fields it takes (`catalog.py`); the trainer fills
only those, and passes them by keyword.
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax

CONTEXT_FIELDS = ("mask", "lengths", "cluster_ids", "embeddings", "answer_ids", "rng")


@flax.struct.dataclass
class GroupContext:
  """Arrays of B groups x N samples (a pytree: it crosses `jax.jit` as is).

  rewards:     fp32 [B, N]  verifier rewards (NaN/Inf already replaced by 0)
  mask:        bool [B, N]  valid samples (padded groups)
  lengths:     int32 [B, N] response tokens, EOS included
  cluster_ids: int32 [B, N] strategy clusters per group, -1 degenerate   (or None)
  embeddings:  fp32 [B, N, D] response embeddings                         (or None)
  answer_ids:  int32 [B, N] equal final answers share an id, -1 none      (or None)
  rng:         PRNG key for estimators that sample (e.g. subsets)
  """
  rewards: jax.Array
  mask: jax.Array
  lengths: jax.Array
  rng: jax.Array
  cluster_ids: Any = None
  embeddings: Any = None
  answer_ids: Any = None

  def select(self, fields: tuple[str, ...]) -> dict[str, Any]:
    """{field: value} for the declared `fields`; a missing one is a trainer bug."""
    out = {name: getattr(self, name) for name in fields}
    missing = [name for name, value in out.items() if value is None]
    if missing:
      raise ValueError(f"context fields {missing} were declared as needed but not computed")
    return out
