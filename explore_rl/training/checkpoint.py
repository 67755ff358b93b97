"""Orbax checkpoints behind one small interface: arrays + a JSON side state, verified.

A checkpoint holds the train state (params, optimizer state, step, PRNG key
data; of a LoRA model only the adapters: the frozen base is the run's `init_from`, which
`restore` takes from the target, models/lora.py) and a JSON-serialisable dict (loop
step, curriculum/data state, skipped-update counters). Restoring into a target built from `jax.eval_shape` keeps
optax's state types and puts arrays on the target's shardings, whatever mesh (or
number of processes) saved them. In a multi-process run every process calls `save`
and `restore` (Orbax coordinates them; each writes and reads its own shards); the
checksums are written by process 0 and checked by every process. Nothing here
unpickles: Orbax writes tensors + JSON only.

Integrity. Orbax/TensorStore do not checksum the array chunks, so flipped bytes
in a data file load as silently wrong weights. After each save, the SHA-256 of
every file of the step directory goes into `<step>/SHA256SUMS.json` (written
last, atomically). `restore()` checks a step's files against it before reading
them and, when the newest step is corrupt (changed, truncated or missing files,
a deleted `_METADATA`, a garbled meta file) or Orbax cannot read it, falls back
to the newest step that verifies and restores, with one warning naming the step
used and why the newer ones were skipped. When none is usable it raises
`UserError` with one line. A step without a checksum file is restored unverified,
with a warning, only when no step of the directory has one (saved before checksums
existed); otherwise it is skipped like a corrupt step (a crash between Orbax's commit
and the checksum write, or a removed file: removing it must not switch the check off).
A corrupt step that a later save would overwrite is moved to `<directory>/corrupt/`
first (kept for inspection, ignored by Orbax).
The directory is a local (or mounted) path: the checksums are computed with `os`.

Kill tests set `EXPLORE_RL_TEST_SAVE_PAUSE_S` to pause inside each save (while Orbax
writes, and between its commit and the checksum file), widening the windows a kill
aims at; it is unset in every other run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

from explore_rl import disk
from explore_rl.errors import UserError
from explore_rl.models import lora

CHECKSUM_FILE = "SHA256SUMS.json"
CORRUPT_DIR = "corrupt"
_CHUNK = 1 << 20

log = logging.getLogger(__name__)


class _OrbaxSpaceErrors(logging.Filter):
  """Drops the tracebacks of a write that ran out of room that Orbax logs (through absl)
  and that asyncio logs when more than one of Orbax's gathered writes failed ("exception was
  never retrieved"): `save` reports the failure as one line (`disk.WriteFailed`)."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.name != "asyncio" and "orbax" not in record.pathname:
      return True
    errors = [Exception(record.getMessage())] + ([record.exc_info[1]] if record.exc_info else [])
    return all(disk.space_errno(e) is None for e in errors if e is not None)


_ORBAX_SPACE_ERRORS = _OrbaxSpaceErrors()


def _drop_closed_loop_reports(unraisable):
  """After a failed save, TensorStore writes still in flight call back into Orbax's event
  loop, closed by then, and each reports "Event loop is closed" as an unraisable error,
  possibly before `save` has raised. The failure is reported once, as `WriteFailed`: those
  reports are dropped (installed with the first Checkpointer; all else goes through)."""
  error = unraisable.exc_value
  if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
    sys.__unraisablehook__(unraisable)


def _test_pause():
  """Sleep `EXPLORE_RL_TEST_SAVE_PAUSE_S` seconds (kill tests only; 0 otherwise)."""
  pause = float(os.environ.get("EXPLORE_RL_TEST_SAVE_PAUSE_S") or 0)
  if pause > 0:
    time.sleep(pause)


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def step_checksums(step_dir: str) -> dict[str, str]:
  """{path relative to step_dir: SHA-256} of every file under `step_dir` but the sums."""
  sums = {}
  for root, dirs, files in os.walk(step_dir):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir)
      if rel != CHECKSUM_FILE:
        sums[rel] = _sha256(path)
  return sums


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


class Checkpointer:
  """`Checkpointer(directory, keep=3)`: save / verify / restore with fallback / close."""

  def __init__(self, directory: str, *, keep: int = 3):
    self.directory = os.path.abspath(directory)
    # Once each: filters are a set. A logger's filter sees only records logged to it, not
    # those propagated from asyncio's logger.
    for name in ("absl", "asyncio"):
      logging.getLogger(name).addFilter(_ORBAX_SPACE_ERRORS)
    sys.unraisablehook = _drop_closed_loop_reports
    self._mgr = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        item_names=("state", "meta"))
    self._pending: list[int] = []  # Saved without waiting: checksums written once finished.

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def latest_step(self) -> int | None:
    """The newest step on disk (restore() may fall back to an older one if it is corrupt)."""
    return self._mgr.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._mgr.all_steps())

  def save(self, step: int, state: Any, meta: dict, *, wait: bool = True):
    """Save `step` (Orbax writes a temporary directory and renames it when complete; the
    checksum file follows). A save that runs out of room raises `disk.WriteFailed`
    (one line: the path, the shortfall) after removing its partial files; the steps
    saved before stay intact."""
    try:
      self._finish_pending()
      if step in self._mgr.all_steps():  # Only after a fallback past a corrupt newer step.
        self._quarantine(step, "a new save of the same step")
      self._mgr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(lora.drop_base(state)), meta=ocp.args.JsonSave(meta)),
          force=True)
      self._pending.append(step)
      _test_pause()  # Orbax is writing (test-only, module docstring)
      if wait:
        self._finish_pending()
    except Exception as e:  # noqa: BLE001 - Orbax/TensorStore wrap OS errors in many types
      needed = sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(state))
      saved = [s for s in self._mgr.all_steps() if s not in self._pending]
      kept = (f"the last checkpoint, step {max(saved)}, is intact: make room and run the same "
              "command to resume" if saved else "no earlier checkpoint exists")
      failed = disk.write_failed(f"checkpoint step {step}", self.directory, e, needed, kept)
      if failed is None:
        raise
      self._pending = []
      self._remove_partial()
      raise failed from None

  def _finish_pending(self):
    """Waits for async saves, then writes each finished step's checksum file."""
    if not self._pending:
      return
    self._mgr.wait_until_finished()
    _test_pause()  # committed, no checksum file yet (test-only, module docstring)
    if jax.process_index() == 0:
      for step in self._pending:
        step_dir = self._step_dir(step)
        if os.path.isdir(step_dir):  # Not already removed by max_to_keep.
          sums = {"algorithm": "sha256", "files": step_checksums(step_dir)}
          tmp = os.path.join(step_dir, CHECKSUM_FILE + ".tmp")
          with open(tmp, "w") as f:
            json.dump(sums, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
          os.replace(tmp, os.path.join(step_dir, CHECKSUM_FILE))
    self._pending = []

  def _remove_partial(self):
    """Remove what an interrupted save left: Orbax's temporary step directories."""
    if jax.process_index() == 0:
      for name in os.listdir(self.directory):
        if ".orbax-checkpoint-tmp" in name:
          shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)

  def _quarantine(self, step: int, why: str):
    """Moves step's directory to corrupt/<step>-<time> (never deletes a checkpoint)."""
    if jax.process_index() == 0:
      os.makedirs(os.path.join(self.directory, CORRUPT_DIR), exist_ok=True)
      dest = os.path.join(self.directory, CORRUPT_DIR, f"{step}-{time.strftime('%Y%m%dT%H%M%S')}")
      os.replace(self._step_dir(step), dest)
      log.warning("checkpoint: moved step %d to %s to make room for %s", step, dest, why)
    self._mgr.reload()

  def verify(self, step: int) -> str | None:
    """Why `step` fails its checksums (one line), None if it matches, "unverified" when
    neither it nor any other step of the directory has a checksum file."""
    step_dir = self._step_dir(step)
    sums_path = os.path.join(step_dir, CHECKSUM_FILE)
    if not os.path.isdir(step_dir):
      return f"directory {step_dir} is missing"
    if not os.path.exists(sums_path):
      if any(os.path.exists(os.path.join(self._step_dir(other), CHECKSUM_FILE))
             for other in self._mgr.all_steps() if other != step):
        return f"no {CHECKSUM_FILE} while other steps have one (interrupted or removed)"
      return "unverified"
    try:
      with open(sums_path) as f:
        expected = json.load(f)["files"]
      if not isinstance(expected, dict):
        raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as e:
      return f"unreadable {CHECKSUM_FILE} ({_first_line(e)})"
    for rel, digest in sorted(expected.items()):
      path = os.path.join(step_dir, rel)
      if not os.path.isfile(path):
        return f"missing file {rel}"
      if _sha256(path) != digest:
        return f"checksum mismatch in {rel}"
    return None

  def _restore_step(self, target: Any, step: int) -> tuple[Any, dict]:
    one_device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                       sharding=getattr(x, "sharding", None) or one_device),
        target)
    out = self._mgr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(lora.drop_base(abstract)), meta=ocp.args.JsonRestore()))
    if not isinstance(out.meta, dict):
      raise ValueError(f"meta is a {type(out.meta).__name__}, not a JSON object")
    return lora.fill_base(out.state, target), out.meta

  def _try_step(self, target: Any, step: int) -> tuple[Any, str | None]:
    """((state, meta), None) or (None, why the step is unusable)."""
    problem = self.verify(step)
    if problem not in (None, "unverified"):
      return None, problem
    try:
      restored = self._restore_step(target, step)
    except Exception as e:  # noqa: BLE001  Orbax/TensorStore raise many types on bad files.
      return None, f"unreadable ({_first_line(e)})"
    if problem == "unverified":
      log.warning("checkpoint: step %d in %s has no %s (saved by an older version or "
                  "interrupted); restored it unverified", step, self.directory, CHECKSUM_FILE)
    return restored, None

  def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict]:
    """(state, meta) of `step`, or of the newest usable step; `target` gives structure and
    shardings (a leaf without one, e.g. from `jax.eval_shape`, goes to this process's
    first device). The shardings need not be those of the save: a checkpoint written
    under one mesh or process count restores under another. A named `step` that is
    corrupt raises `UserError`; without one, corrupt newer steps are skipped with a
    warning. No checkpoint at all: FileNotFoundError."""
    self._finish_pending()
    if step is not None:
      restored, problem = self._try_step(target, step)
      if problem:
        raise UserError(f"checkpoint step {step} in {self.directory} is unusable: {problem}")
      return restored
    steps = sorted(self._mgr.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    skipped = []
    for candidate in steps:
      restored, problem = self._try_step(target, candidate)
      if problem is None:
        if skipped:
          log.warning("checkpoint: restored step %d from %s, skipping newer %s",
                      candidate, self.directory, "; ".join(skipped))
        return restored
      skipped.append(f"step {candidate} ({problem})")
    raise UserError(f"no usable checkpoint in {self.directory}: {'; '.join(skipped)}; "
                    f"restore a backup, or start over in a new --workdir")

  def close(self):
    self._finish_pending()
    self._mgr.wait_until_finished()
    self._mgr.close()
