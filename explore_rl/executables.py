"""Keeps a process's live XLA:CPU executables under the kernel's memory-mapping limit.

XLA:CPU keeps each compiled kernel in its own anonymous memory mappings (code, read-only
data, data: up to three per kernel), and an executable lives as long as JAX's in-memory
caches hold it. A process that trains many configs in turn (the test suite's long-lived
workers, an experiment's arms, a notebook) therefore accumulates mappings: a tiny GRPO
run adds about 2,000, an explore/exploit run 1,700 more. Linux refuses a process more
than `vm.max_map_count` of them (65,530 by default). When the LLVM JIT's next `mmap`
fails, XLA logs "LLVM compilation error: Cannot allocate memory", and jaxlib 0.10.2 then
segfaults while it throws that error (inside libgcc's unwinder), where it should raise.
That was the suite's worker segfault; docs/testing.md has the native stack and a
ten-line reproducer.

`release_if_near_limit` drops JAX's caches (`jax.clear_caches`), which frees every
executable no live object holds, once the mappings pass a fraction of the limit. Runs
started by name (`training.trainers.TRAINERS`) and every test of the suite call it.
"""
from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)

NEAR_LIMIT = 0.5  # half the limit leaves room for a large model's compile (~10^4 mappings)


def mappings_in_use() -> int | None:
  """How many memory mappings this process has (lines of /proc/self/maps); None where
  the kernel does not say (not Linux)."""
  try:
    with open("/proc/self/maps", "rb") as f:
      return f.read().count(b"\n")
  except OSError:
    return None


def mapping_limit() -> int | None:
  """`vm.max_map_count`, or None where the kernel does not say."""
  try:
    with open("/proc/sys/vm/max_map_count") as f:
      return int(f.read())
  except (OSError, ValueError):
    return None


def release_if_near_limit(fraction: float = NEAR_LIMIT) -> bool:
  """Clears JAX's caches when the process uses more than `fraction` of its mapping limit;
  returns whether it did. Functions compile again on their next call."""
  in_use, limit = mappings_in_use(), mapping_limit()
  if in_use is None or limit is None or in_use <= fraction * limit:
    return False
  import jax
  jax.clear_caches()
  gc.collect()
  log.info("%d of %d memory mappings in use: cleared JAX's caches (now %s)", in_use, limit,
           mappings_in_use())
  return True
