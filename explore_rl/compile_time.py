"""Seconds this process spent compiling, from JAX's public monitoring events.

  xla   = Σ `/jax/core/compile/backend_compile_duration`: XLA's compile of each new
          executable, or only the read of it when the persistent cache
          (compile_cache.py) holds it;
  trace = Σ jaxpr tracing + lowering to MLIR, which every fresh process pays,
          with or without the cache.

A second run of a config with the cache on spends a small fraction of the first
run's `xla` seconds (measured in benchmarks/rl_step.py).
"""
from __future__ import annotations

import collections

XLA_EVENT = "/jax/core/compile/backend_compile_duration"
TRACE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                "/jax/core/compile/jaxpr_to_mlir_module_duration")

_totals: collections.Counter = collections.Counter()
_listening = False


def _listen(event: str, seconds: float, **_):
  if event == XLA_EVENT:
    _totals["xla"] += seconds
  elif event in TRACE_EVENTS:
    _totals["trace"] += seconds


def start():
  """Starts counting (once per process; call before the first compile)."""
  global _listening
  if not _listening:
    import jax
    jax.monitoring.register_event_duration_secs_listener(_listen)
    _listening = True


def seconds() -> dict[str, float]:
  """{"xla": s, "trace": s} compiled since `start()`."""
  return {"xla": _totals["xla"], "trace": _totals["trace"]}


def summary(since: dict[str, float] | None = None) -> str:
  """'compile time: X s XLA + Y s tracing', counted from `since` (a `seconds()` value)."""
  now, since = seconds(), since or {"xla": 0.0, "trace": 0.0}
  return (f"compile time: {now['xla'] - since['xla']:.1f} s XLA + "
          f"{now['trace'] - since['trace']:.1f} s tracing")
