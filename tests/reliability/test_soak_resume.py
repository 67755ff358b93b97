"""A soak test of stop-and-resume: a 300-step tiny run stopped by SIGTERM about every 40
steps and resumed by the same command each time writes the same metrics as the run left
alone, bit for bit on the CPU (timings aside).

Marked `soak`: it is not part of `make test` (about 4 minutes per trainer on 2 cores);
run it with `.venv/bin/python -m pytest -m soak tests/reliability`. docs/testing.md
records its last result.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STEPS, EVERY = 300, 40
TIMING = ("time_", "step_time", "tokens_per_s")
TRAINERS = {
    "grpo": ["--config", "configs/grpo.py:tiny", "--config.objective.entropy_coef=0.05"],
    "explore_exploit": ["--config", "configs/explore_exploit.py:tiny"],
}


def _train(name, workdir, env):
  return subprocess.Popen(
      [sys.executable, "-m", "explore_rl.cli", "train", *TRAINERS[name], "--workdir",
       str(workdir), f"--config.total_steps={STEPS}", "--config.checkpoint_every=25",
       "--config.eval_every=50", "--config.optim.learning_rate=0.01"],
      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rows(workdir) -> list[dict]:
  path = workdir / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _strip(rows):
  return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


@pytest.mark.soak
@pytest.mark.parametrize("name", sorted(TRAINERS))
def test_sigterm_every_40_steps_then_resume_ends_bit_for_bit_as_the_run_left_alone(
    name, tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
         "EXPLORE_RL_JAX_CACHE": str(tmp_path / "jax_cache")}
  straight = _train(name, tmp_path / "straight", env)
  assert straight.wait(timeout=3600) == 0, straight.stderr.read()[-3000:]
  workdir, cycles, target = tmp_path / "stopped", 0, EVERY
  while True:
    proc = _train(name, workdir, env)
    while proc.poll() is None and (_rows(workdir) or [{"step": 0}])[-1]["step"] < target:
      time.sleep(0.05)
    if proc.poll() is None:
      proc.send_signal(signal.SIGTERM)  # saves the step in flight, then exits
      cycles += 1
      target += EVERY
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, stderr[-3000:]
    if (_rows(workdir) or [{"step": 0}])[-1]["step"] == STEPS:
      break
  rows = _rows(workdir)
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
  assert _strip(rows) == _strip(_rows(tmp_path / "straight"))  # exact float equality
  assert cycles >= STEPS // EVERY - 1
  print(f"\n{name}: {cycles} stop-and-resume cycles, {STEPS} steps, bit for bit")
