"""Crash consistency, tested by killing: `kill -9` at random points of a run (inside its
checkpoint saves too), then the same command again, until the run ends.

After every kill the next `explore-rl train` resumes from the last complete checkpoint;
in the end `metrics.jsonl` holds each step exactly once, no torn line, and the rows of an
uninterrupted run (docs/design.md, "Run directories": what a kill can lose).
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS = 30
KILLS = 20
# Orbax's write and the gap between its commit and the checksum file, widened so that
# most kills land inside a save (explore_rl/training/checkpoint.py).
SAVE_PAUSE_S = 0.25
TIMING = ("time_", "step_time", "tokens_per_s")
OVERRIDES = [f"--config.total_steps={STEPS}", "--config.checkpoint_every=1",
             f"--config.eval_every={STEPS // 3}", "--config.objective.entropy_coef=0.05",
             "--config.optim.learning_rate=0.01"]


def _train(workdir, env, **kwargs):
  return subprocess.Popen(
      [sys.executable, "-m", "explore_rl.cli", "train", "--config", "configs/grpo.py:tiny",
       "--workdir", str(workdir), *OVERRIDES], cwd=ROOT, env=env,
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kwargs)


def _raw_rows(workdir) -> list[dict]:
  """Every line of metrics.jsonl, parsed: a torn or repeated line fails the test."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return []
  text = path.read_text()
  assert text == "" or text.endswith("\n"), "a torn last line"
  return [json.loads(line) for line in text.splitlines()]


def _resume_point(workdir) -> int:
  """The step a restart resumes from, as `Checkpointer.restore` chooses it: the newest
  step whose save finished (Orbax's rename and the checksum file); while no step has a
  checksum file (every save so far killed between the two), the newest renamed step,
  restored unverified. 0: none."""
  ckpt = workdir / "checkpoints"
  steps = [d for d in ckpt.iterdir() if d.name.isdigit()] if ckpt.is_dir() else []
  verified = [int(d.name) for d in steps if (d / "SHA256SUMS.json").exists()]
  return max(verified or [int(d.name) for d in steps] or [0])


def _last_row_mtime(workdir) -> tuple[int, float]:
  path = workdir / "metrics.jsonl"
  try:
    text, mtime = path.read_text(), path.stat().st_mtime
  except FileNotFoundError:
    return 0, 0.0
  lines = [line for line in text.splitlines() if line.strip()]
  try:
    return (json.loads(lines[-1])["step"] if lines else 0), mtime
  except ValueError:
    return 0, mtime


def _strip(rows):
  return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_ends_as_an_uninterrupted_run(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
         "EXPLORE_RL_JAX_CACHE": str(tmp_path / "jax_cache")}  # restarts skip the compiles
  straight = tmp_path / "straight"
  start = time.monotonic()
  proc = _train(straight, env)
  assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
  run_s = time.monotonic() - start
  env["EXPLORE_RL_TEST_SAVE_PAUSE_S"] = str(SAVE_PAUSE_S)

  workdir, rng = tmp_path / "killed", random.Random(0)
  kills, lost, previous = 0, [], 0
  while True:
    resume_from = _resume_point(workdir)
    launched = time.time()
    proc = _train(workdir, env)
    if kills < KILLS:
      # A few kills during start-up and restore; the rest at a random moment after this
      # process wrote its first row, most of them inside a save.
      if rng.random() < 0.15:
        time.sleep(rng.uniform(0.0, run_s / 2))
      else:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
          step, mtime = _last_row_mtime(workdir)
          if mtime > launched and step > resume_from:
            break
          time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 3 * SAVE_PAUSE_S))
      if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        written = [r["step"] for r in _raw_rows(workdir)]
        point = _resume_point(workdir)
        lost.append(max(written, default=0) - point)
        assert point >= previous  # what a restart resumes from only moves forward
        previous = point
        continue
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, stderr[-3000:]
    break

  rows = _raw_rows(workdir)
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))  # each step exactly once
  assert _strip(rows) == _strip(_raw_rows(straight))
  assert kills == KILLS
  # At most the steps since the resume point are lost (a save in flight: 1).
  assert max(lost) <= 1, lost
  print(f"\nkills survived: {kills}; steps lost per kill: {lost}; uninterrupted run "
        f"{run_s:.1f} s")
