"""Stop-and-resume of a run whose sampler runs one version ahead (`rollout.max_staleness` 1):
a 40-step tiny run stopped twice by SIGTERM and resumed by the same command keeps the
guarantee of docs/async.md, "What a resume guarantees": every row up to the first stop is
the uninterrupted run's, bit for bit (timings aside); each step is written once; after each
resume the staleness starts again at 0 (the dropped rollouts are redrawn by the restored
policy), and never exceeds 1.
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
STEPS, STOPS = 40, (12, 26)
TIMING = ("time_", "step_time", "tokens_per_s")
ARGS = ["--config", "configs/grpo.py:tiny", "--config.objective.entropy_coef=0.05",
        "--config.optim.learning_rate=0.01", "--config.rollout.max_staleness=1",
        f"--config.total_steps={STEPS}", "--config.checkpoint_every=10",
        "--config.eval_every=20"]


def _train(workdir, env):
  return subprocess.Popen([sys.executable, "-m", "explore_rl.cli", "train", *ARGS,
                           "--workdir", str(workdir)], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rows(workdir) -> list[dict]:
  path = workdir / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _strip(row):
  return {k: v for k, v in row.items() if not k.startswith(TIMING)}


@pytest.mark.slow
def test_sigterm_twice_with_the_sampler_ahead_keeps_the_documented_guarantee(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
         "EXPLORE_RL_JAX_CACHE": str(tmp_path / "jax_cache")}
  straight = _train(tmp_path / "straight", env)
  assert straight.wait(timeout=900) == 0, straight.stderr.read()[-3000:]
  workdir, resumed_after = tmp_path / "stopped", []
  for target in (*STOPS, None):
    if _rows(workdir):
      resumed_after.append(_rows(workdir)[-1]["step"])
    proc = _train(workdir, env)
    while target and proc.poll() is None and \
        (_rows(workdir) or [{"step": 0}])[-1]["step"] < target:
      time.sleep(0.05)
    if target and proc.poll() is None:
      proc.send_signal(signal.SIGTERM)    # finishes the step in flight, saves, exits
    stderr = proc.communicate(timeout=900)[1]
    assert proc.returncode == 0, stderr[-3000:]
  rows, want = _rows(workdir), _rows(tmp_path / "straight")
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
  assert len(resumed_after) == 2 and 0 < resumed_after[0] < resumed_after[1] < STEPS
  first = resumed_after[0]
  assert [_strip(r) for r in rows[:first]] == [_strip(r) for r in want[:first]]
  staleness = [r["rollout/staleness_max"] for r in rows]
  assert max(staleness) == 1
  assert [i + 1 for i, s in enumerate(staleness) if s == 0] == [1, *(s + 1 for s in resumed_after)]
