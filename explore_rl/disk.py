"""Writes that fail for want of space, reported as one line naming the path and the shortfall.

A full filesystem (ENOSPC), a quota (EDQUOT) or the process's file-size limit (EFBIG,
`ulimit -f`) stops a run: what it writes (checkpoints, metrics rows, eval results) goes
through here, so the user reads what ran out and by how much, and what was written
before stays intact (docs/design.md, "Run directories": what a failed write keeps).
"""
from __future__ import annotations

import errno
import os
import re
import resource

from explore_rl.errors import UserError

REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EFBIG: "a file would exceed the file-size limit"}
# TensorStore (under Orbax) reports the OS error inside its message text.
_TENSORSTORE_CODE = re.compile(r"os_error_code='?(\d+)")


class WriteFailed(UserError):
  """A write stopped for want of space; the message names the path and the shortfall."""


def space_errno(error: BaseException) -> int | None:
  """ENOSPC, EDQUOT or EFBIG when `error` (or what caused it) is a write that ran out of
  room, else None."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    code = error.errno if isinstance(error, OSError) else None
    if code is None and (match := _TENSORSTORE_CODE.search(str(error))):
      code = int(match.group(1))
    if code in REASONS:
      return code
    error = error.__cause__ or error.__context__
  return None


def _size(n: float) -> str:
  """Bytes in words: KiB below a MiB, so a small limit does not read as "0.0 MiB"."""
  return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def shortfall(path: str, needed_bytes: int, code: int) -> str:
  """What is missing to write `needed_bytes` at `path`, in words."""
  if code == errno.EFBIG:
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    shown = "unlimited" if limit == resource.RLIM_INFINITY else _size(limit)
    return f"the file-size limit is {shown}; the write holds {_size(needed_bytes)}"
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  fs = os.statvfs(existing)
  free = fs.f_bavail * fs.f_frsize
  return (f"{_size(free)} free, about {_size(needed_bytes)} needed, "
          f"{_size(max(needed_bytes - free, 0))} short")


def write_failed(what: str, path: str, error: BaseException, needed_bytes: int,
                 kept: str) -> WriteFailed | None:
  """The one-line `WriteFailed` for `error` if it is a write that ran out of room, else
  None. `what` says what was being written, `kept` what stays intact."""
  code = space_errno(error)
  if code is None:
    return None
  return WriteFailed(f"{what}: could not write {path}: {REASONS[code]} "
                     f"({shortfall(path, needed_bytes, code)}); {kept}")


def atomic_write_text(path: str, text: str, *, what: str) -> None:
  """Write `text` to `path` through a temporary file and a rename, so a reader (or a
  failure) sees the old file or the new one, never a part. Out of room: `WriteFailed`."""
  tmp = f"{path}.tmp"
  try:
    with open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    failed = write_failed(what, path, e, len(text.encode()),
                          "the previous file, if any, is unchanged")
    if failed is None:
      raise
    raise failed from e
