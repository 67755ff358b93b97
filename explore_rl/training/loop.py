"""The loop skeleton SFT and RL share: steps, periodic eval, metrics, checkpoints, stops.

  for step in start..total:
    metrics = step_fn(step)                      # the trainer's work, NaN updates skipped
    every eval_every steps (and at the end): metrics |= eval_fn(done)
    write one metrics row; stop after `max_consecutive_skips` skipped updates in a row
    every checkpoint_every steps, at the end, or on SIGINT/SIGTERM: save_fn(done)

SIGINT (Ctrl-C) and SIGTERM (batch schedulers, preemptible TPU VMs) finish the
step in flight, save a checkpoint and return: the same command resumes. A second
signal interrupts at once.

In a multi-process run every process runs the loop (each step is a collective
computation) and computes the same metrics; process 0 writes them.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable

from explore_rl.distributed import is_primary
from explore_rl.training import memory
from explore_rl.metrics_log import DiscardMetrics, MetricsWriter

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_requests():
  """A list that receives the signal number when SIGINT/SIGTERM arrives (main thread only)."""
  received: list[int] = []
  if threading.current_thread() is not threading.main_thread():
    yield received
    return
  previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

  def on_signal(signum, frame):
    received.append(signum)
    for s, handler in previous.items():   # a second signal acts at once
      signal.signal(s, handler)

  for s in STOP_SIGNALS:
    signal.signal(s, on_signal)
  try:
    yield received
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


@contextlib.contextmanager
def _memory_named(step: int):
  """An allocation failure inside becomes one line naming the step and the largest
  buffers (`memory.OutOfMemory`)."""
  try:
    yield
  except Exception as e:  # noqa: BLE001 - XLA raises its own runtime error type
    if not memory.is_out_of_memory(e):
      raise
    raise memory.out_of_memory(step, e) from None


def run_loop(config, workdir: str, *, start_step: int, desc: str, progress: bool,
             step_fn: Callable[[int], dict], eval_fn: Callable[[int], dict],
             save_fn: Callable[[int], None]) -> dict:
  """Runs steps start_step..config.total_steps-1; returns the last eval's metrics.

  `step_fn(step)` returns the step's metrics, with `updates_skipped` (int) when an
  update was skipped for a NaN/Inf loss or gradient.
  """
  total = config.total_steps
  max_skips = config.get("max_consecutive_skips", 5)
  writer = MetricsWriter(workdir, total_steps=total, initial_step=start_step, desc=desc,
                         progress=progress) if is_primary() else DiscardMetrics()
  consecutive_skips, last_eval = 0, {}
  try:
    with stop_requests() as stop:
      for step in range(start_step, total):
        done = step + 1
        with _memory_named(done):
          metrics = step_fn(step)
        consecutive_skips = consecutive_skips + 1 if metrics.get("updates_skipped") else 0
        if done % config.eval_every == 0 or done == total:
          with _memory_named(done):
            last_eval = eval_fn(done)
          metrics.update(last_eval)
        writer.write(done, metrics)
        if consecutive_skips >= max_skips:
          raise FloatingPointError(
              f"{consecutive_skips} consecutive steps had NaN/Inf losses or gradients "
              f"(step {done}); stopping. Lower the learning rate or check the rewards.")
        if done % config.checkpoint_every == 0 or done == total or stop:
          save_fn(done)
        if stop:
          print(f"\n{signal.Signals(stop[0]).name}: saved step {done} in {workdir}; run the "
                "same command to resume")
          break
  finally:
    writer.close()
  return last_eval
