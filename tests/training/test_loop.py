"""The loop SFT and RL share (training/loop.py): a stop signal finishes the step in flight,
saves it and returns; NaN/Inf updates stop the run after `max_consecutive_skips` in a row.

The trainers' own tests cover the same paths end to end for RL (tests/test_cli.py: Ctrl-C
and resume; tests/training/test_rl_trainer.py: the NaN stop); these drive `run_loop` with
stand-in steps, so they cover SFT (the same loop) and SIGTERM in a second.
"""
import os
import signal
import threading

import ml_collections
import pytest

from explore_rl.metrics_log import read_metrics
from explore_rl.training.loop import run_loop


def _config(total=10, **kwargs):
  return ml_collections.ConfigDict({"total_steps": total, "eval_every": 100,
                                    "checkpoint_every": 100, **kwargs})


def _run(tmp_path, step_fn, config=None):
  saved, evals = [], []
  run_loop(config or _config(), str(tmp_path), start_step=0, desc="test", progress=False,
           step_fn=step_fn, eval_fn=lambda done: evals.append(done) or {"pass@1": 0.5},
           save_fn=saved.append)
  return saved, evals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_finishes_the_step_saves_it_and_returns(tmp_path, signum, capsys):
  if threading.current_thread() is not threading.main_thread():
    pytest.skip("signal handlers are installed from the main thread only")
  before = signal.getsignal(signum)

  def step_fn(step):
    if step == 2:
      # the loop's handler, not the default one (which would end this process)
      assert signal.getsignal(signum) not in (signal.SIG_DFL, before)
      os.kill(os.getpid(), signum)
    return {"loss": float(step)}

  saved, _ = _run(tmp_path, step_fn)
  assert saved == [3]                                     # step 2 finished, then saved
  assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2, 3]
  assert signal.getsignal(signum) is before               # the handler is put back
  assert f"{signal.Signals(signum).name}: saved step 3" in capsys.readouterr().out


def test_checkpoints_and_evals_follow_their_periods_and_the_end(tmp_path):
  saved, evals = _run(tmp_path, lambda step: {"loss": 1.0},
                      _config(total=7, eval_every=3, checkpoint_every=2))
  assert saved == [2, 4, 6, 7] and evals == [3, 6, 7]
  rows = read_metrics(str(tmp_path))
  assert [r["step"] for r in rows] == list(range(1, 8))
  assert [r["step"] for r in rows if "pass@1" in r] == [3, 6, 7]


def test_consecutive_skipped_updates_stop_the_run_with_a_clear_error(tmp_path):
  skipped = {3, 5, 6, 7}                      # 3 alone, then 5, 6, 7 in a row

  def step_fn(step):
    return {"loss": float("nan") if step in skipped else 1.0,
            "updates_skipped": int(step in skipped)}

  with pytest.raises(FloatingPointError, match="3 consecutive steps.*step 8"):
    _run(tmp_path, step_fn, _config(max_consecutive_skips=3))
  # every step up to the stop was written; a lone skip does not count towards it
  assert [r["step"] for r in read_metrics(str(tmp_path))] == list(range(1, 9))


def test_running_out_of_memory_names_the_step_and_the_largest_buffers(tmp_path):
  import jax
  import jax.numpy as jnp
  from explore_rl.training.memory import OutOfMemory
  held = jnp.zeros((4096, 4096), jnp.float32)  # 64 MiB: larger than any fixture's buffer

  def step_fn(step):
    if step == 2:  # XLA cannot allocate 2 TiB on any host: RESOURCE_EXHAUSTED
      jax.jit(lambda: jnp.zeros((2**41,), jnp.uint8))().block_until_ready()
    return {"loss": 0.0}

  with pytest.raises(OutOfMemory) as e:
    _run(tmp_path, step_fn)
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith("out of memory at step 3 (RESOURCE_EXHAUSTED: Out of memory "
                            "allocating 2199023255552 bytes.); largest live buffers: "
                            "float32[4096, 4096] 64.0 MiB")
  assert message.endswith("; lower rollout.prompts_per_step, rollout.num_samples or "
                          "max_response_len, or raise learner.micro_batches")
  assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2]
  del held
