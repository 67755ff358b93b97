"""Metrics sinks: JSONL in the workdir (for notebooks), TensorBoard events, a progress bar."""
from __future__ import annotations

import json
import math
import os
from typing import Mapping

import numpy as np
from tqdm.auto import tqdm


def _plain(v):
  """JSON-safe scalars: numpy/jax scalars to float/int; NaN/Inf kept as strings."""
  v = np.asarray(v).item() if hasattr(v, "shape") or isinstance(v, np.generic) else v
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)
  return v


class MetricsWriter:
  """Appends one JSON object per step to DIR/metrics.jsonl and scalars to TensorBoard."""

  def __init__(self, workdir: str, *, tensorboard: bool = True, total_steps: int | None = None,
               initial_step: int = 0, desc: str = "train", progress: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = open(self.path, "a")
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
    self._bar = tqdm(total=total_steps, initial=initial_step, desc=desc, dynamic_ncols=True,
                     disable=not progress)

  def write(self, step: int, metrics: Mapping[str, object]):
    row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()
    if self._tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
          self._tb.add_scalar(k, v, step)
    shown = {k: row[k] for k in ("loss", "reward_mean", "entropy", "pass@1") if k in row}
    self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if isinstance(v, float)})
    self._bar.update(1)

  def close(self):
    self._file.close()
    self._bar.close()
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """All rows of DIR/metrics.jsonl (the last row per step wins after a resume)."""
  path = os.path.join(workdir, "metrics.jsonl")
  rows: dict[int, dict] = {}
  with open(path) as f:
    for line in f:
      row = json.loads(line)
      rows[row["step"]] = row
  return [rows[s] for s in sorted(rows)]
