"""XLA's persistent compilation cache, one set-up for every entry point.

A fresh process re-compiles every jitted function (the RL update of the `small` preset
takes ~20 s on a 2-core CPU); with the cache a second run of the same config loads the
executables from disk instead. The CLI, the demo, the experiments and the test suite
all call `enable`, so they share this one policy:

- the directory is the one asked for explicitly (the CLI's `--compile_cache`), else
  `$EXPLORE_RL_JAX_CACHE`, else the caller's default (an experiment's shared folder),
  else `$XDG_CACHE_HOME/explore_rl/jax` (`~/.cache/explore_rl/jax`); `off` in either of
  the first two turns it off;
- a size bound, because JAX takes its file lock only when eviction is on. Without the
  lock a process can read an entry that another process is still writing and
  deserialise a truncated executable, which crashes XLA (seen as a segfault of a pytest
  worker when the suite ran from a cold cache on two workers).
"""
from __future__ import annotations

import os
import time

ENV = "EXPLORE_RL_JAX_CACHE"
MAX_BYTES = 8 << 30          # evict least recently used entries beyond 8 GiB
MIN_COMPILE_SECS = 0.5       # cache only what is worth a disk read


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "explore_rl", "jax")


def resolve(path: str | None = None, default: str | None = None) -> str | None:
  """The directory `enable(path, default=default)` uses, or None when turned off."""
  chosen = path or os.environ.get(ENV) or default or default_dir()
  if chosen.lower() in ("off", "0", "none", "false"):
    return None
  return os.path.abspath(os.path.expanduser(chosen))


def enable(path: str | None = None, *, default: str | None = None,
           min_compile_secs: float = MIN_COMPILE_SECS) -> str | None:
  """Turns the persistent cache on (call before the first compile); returns its directory,
  or None when it is turned off."""
  import jax
  directory = resolve(path, default)
  if directory is None:
    return None
  os.makedirs(directory, exist_ok=True)
  _backfill_access_times(directory)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_secs)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return directory


def _backfill_access_times(directory: str) -> None:
  """Gives every entry an access-time file. A cache written without a size bound has none,
  and JAX's eviction scan then fails on each write (FileNotFoundError: ...-atime), so
  nothing new would be cached there."""
  now = time.time_ns().to_bytes(8, "little")
  for name in os.listdir(directory):
    if name.endswith("-cache"):
      atime = os.path.join(directory, name[:-len("-cache")] + "-atime")
      if not os.path.exists(atime):
        with open(atime, "wb") as f:
          f.write(now)
