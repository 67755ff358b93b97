"""Metrics sinks: JSONL in the workdir (for notebooks), TensorBoard events, a progress bar.

A crash mid-write can leave metrics.jsonl with a torn last line (no newline, or
bytes that do not parse, such as the NULs a filesystem leaves after a power
loss). Appending to it would glue the next row onto the fragment, so
`MetricsWriter` repairs the file when it opens it: a last line that parses gets
its newline, one that does not is cut off, with a warning. `read_metrics`
names each bad line as `file:line`.

A run killed after writing rows it had not yet checkpointed resumes from its last
checkpoint and writes those steps again: `MetricsWriter(initial_step=...)` first drops
the rows past the step it resumes from (an atomic rewrite) and TensorBoard's events past
it (`purge_step`), so every reader sees each step once.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
from typing import Mapping

import numpy as np
from tqdm.auto import tqdm

from explore_rl import disk
from explore_rl.errors import UserError

log = logging.getLogger(__name__)
_BLOCK = 65536


def _parse_row(line: bytes | str) -> dict | None:
  """The row a metrics line holds (a JSON object with an integer step), else None."""
  try:
    row = json.loads(line)
  except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError.
    return None
  if isinstance(row, dict) and isinstance(row.get("step"), int):
    return row
  return None


def repair_torn_last_line(path: str) -> str | None:
  """Makes `path` end in a complete row; returns what was done (for a warning) or None.

  Reads only the file's tail when it is intact: opening a long run's metrics costs
  no full read (a repair also counts lines, to name the one it cut).
  """
  if not os.path.exists(path):
    return None
  with open(path, "r+b") as f:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
      return None
    # The start of the last line: after the last newline before the file's final byte.
    end, start = size - 1, None
    while start is None and end > 0:
      begin = max(0, end - _BLOCK)
      f.seek(begin)
      cut = f.read(end - begin).rfind(b"\n")
      if cut >= 0:
        start = begin + cut + 1
      end = begin
    start = 0 if start is None else start
    f.seek(start)
    last = f.read()
    if last.endswith(b"\n") and _parse_row(last) is not None:
      return None
    if not last.endswith(b"\n") and _parse_row(last) is not None:
      f.write(b"\n")
      return f"{path}:{_line_number(f, start)}: added the missing newline of the last row"
    f.truncate(start)
    return (f"{path}:{_line_number(f, start)}: removed a torn last line ({len(last)} bytes, "
            f"{last[:60]!r}) left by an interrupted write")


def _line_number(f, offset: int) -> int:
  """1-based number of the line starting at byte `offset`."""
  f.seek(0)
  count, read = 1, 0
  while read < offset:
    block = f.read(min(_BLOCK, offset - read))
    count += block.count(b"\n")
    read += len(block)
  return count


def _plain(v):
  """JSON-safe scalars: numpy/jax scalars to float/int; NaN/Inf kept as strings."""
  v = np.asarray(v).item() if hasattr(v, "shape") or isinstance(v, np.generic) else v
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)
  return v


def drop_rows_after(path: str, step: int) -> int:
  """Removes the rows of `path` whose step is > `step` (a killed run's tail that its
  resume writes again); returns how many. Rewrites the file only when its last row is
  past `step`, atomically (a temporary file, fsync, rename), so a kill during the
  rewrite leaves the old file or the new one."""
  if not os.path.exists(path):
    return 0
  with open(path, "rb") as f:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - _BLOCK))
    tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    last = _parse_row(tail)
    if last is not None and last["step"] <= step:
      return 0
    f.seek(0)
    lines = f.readlines()
  keep = [line for line in lines if (row := _parse_row(line)) is None or row["step"] <= step]
  tmp = f"{path}.tmp"
  with open(tmp, "wb") as out:
    out.writelines(keep)
    out.flush()
    os.fsync(out.fileno())
  os.replace(tmp, path)
  return len(lines) - len(keep)


def _summary_writer_class():
  """tensorboardX's SummaryWriter, imported without torch. tensorboardX imports torch at
  module level whenever it is installed (the `hf` extra installs it): 1.7 s and half a
  gigabyte of address space in every process that writes metrics, for nothing, since
  only Python scalars are written here."""
  if "tensorboardX.writer" not in sys.modules and "torch" not in sys.modules:
    sys.modules["torch"] = None  # `import torch` raises ImportError for this import only
    try:
      import tensorboardX.writer  # noqa: F401
    finally:
      del sys.modules["torch"]
  from tensorboardX import SummaryWriter
  return SummaryWriter


class MetricsWriter:
  """Appends one JSON object per step to DIR/metrics.jsonl and scalars to TensorBoard.

  initial_step: the step a training run starts from (0, or its restored checkpoint's):
  rows past it are dropped first (module docstring). None appends to what is there.
  """

  def __init__(self, workdir: str, *, tensorboard: bool = True, total_steps: int | None = None,
               initial_step: int | None = None, desc: str = "train", progress: bool = True):
    os.makedirs(workdir, exist_ok=True)
    self.path = os.path.join(workdir, "metrics.jsonl")
    repaired = repair_torn_last_line(self.path)
    if repaired:
      log.warning("metrics: %s", repaired)
    dropped = 0 if initial_step is None else drop_rows_after(self.path, initial_step)
    if dropped:
      log.warning("metrics: %s: dropped %d rows past step %d, the checkpoint this run "
                  "resumes from (they are written again)", self.path, dropped, initial_step)
    self._file = open(self.path, "a")
    self._broken = False
    self._tb = None
    if tensorboard:
      SummaryWriter = _summary_writer_class()
      # Events of steps > initial_step, left by a killed run, are hidden from TensorBoard.
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"),
                               purge_step=None if initial_step is None else initial_step + 1)
    self._bar = tqdm(total=total_steps, initial=initial_step or 0, desc=desc, dynamic_ncols=True,
                     disable=not progress)

  def write(self, step: int, metrics: Mapping[str, object]):
    row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    line = json.dumps(row) + "\n"
    try:
      self._file.write(line)
      self._file.flush()
    except OSError as e:
      failed = disk.write_failed(f"metrics row of step {step}", self.path, e,
                                 len(line.encode()), "the rows before it are intact (a torn "
                                 "last row is cut when the run resumes)")
      if failed is None:
        raise
      self._broken = True
      raise failed from e
    if self._tb is not None:
      for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
          self._tb.add_scalar(k, v, step)
    shown = {k: row[k] for k in ("loss", "reward_mean", "entropy", "pass@1") if k in row}
    self._bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if isinstance(v, float)})
    self._bar.update(1)

  def close(self):
    try:
      self._file.close()
    except OSError:
      if not self._broken:  # a failed write was reported already; its bytes cannot land
        raise
    self._bar.close()
    if self._tb is not None:
      self._tb.close()


class DiscardMetrics:
  """The writer of a multi-process run's processes other than 0: rows are dropped (every
  process computes the same metrics; process 0 writes them)."""

  def write(self, step: int, metrics: Mapping[str, object]):
    del step, metrics

  def close(self):
    pass


def read_metrics(workdir: str, *, strict: bool = True) -> list[dict]:
  """All rows of DIR/metrics.jsonl (the last row per step wins after a resume).

  A line that is not a JSON object with an integer "step" raises `UserError`
  naming `file:line`; with `strict=False` it is skipped with a warning instead
  (for reading what a damaged run left). A last line without its newline is a
  write still in progress (a notebook reading a live run) and is skipped quietly.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  rows: dict[int, dict] = {}
  with open(path, "rb") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      row = _parse_row(line)
      if row is None:
        if not line.endswith(b"\n"):
          break
        message = f"{path}:{number}: not a metrics row (a JSON object with an integer step): " \
                  f"{line[:80]!r}"
        if strict:
          raise UserError(message)
        log.warning("metrics: skipped %s", message)
        continue
      rows[row["step"]] = row
  return [rows[s] for s in sorted(rows)]
