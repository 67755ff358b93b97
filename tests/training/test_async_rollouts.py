"""Rollouts drawn ahead of the learner (`rollout.max_staleness`, training/async_rollouts.py).

max_staleness 0 is the synchronous loop, bit for bit; k >= 1 draws rollout r with version
max(start, r - k), the same rollouts whether a sampler thread draws them or the learner's
thread does (the multi-process schedule), on shared or on its own devices; a resume
redraws the dropped rollouts from the restored parameters (docs/async.md).
"""
from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess
import sys
import threading

import jax
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.metrics_log import read_metrics
from explore_rl.training import async_rollouts, rl
from explore_rl.training.policy_loader import load_policy
from explore_rl.training.rl import RLTrainer, train_rl


def _smoke_module():
  """tests/training/test_configs_smoke.py (its golden metrics; importlib import mode)."""
  spec = importlib.util.spec_from_file_location(
      "configs_smoke", pathlib.Path(__file__).with_name("test_configs_smoke.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_SMOKE = _smoke_module()
_TIMING = _SMOKE._TIMING

# The smallest run that moves the parameters (an entropy bonus: the untrained model earns
# no reward), 4 prompts x 4 samples over 8 devices.
BASE = {"objective.entropy_coef": 0.05, "optim.learning_rate": 1e-2, "total_steps": 5,
        "eval_every": 5, "checkpoint_every": 5}


def _rows(workdir) -> list[dict]:
  return [{k: v for k, v in r.items() if not _TIMING.search(k)}
          for r in read_metrics(str(workdir))]


def _params(workdir):
  return jax.tree.leaves(jax.device_get(load_policy(str(workdir)).params))


def _inline(monkeypatch):
  """Draw k >= 1 rollouts in the learner's thread, as a multi-process run does."""
  monkeypatch.setattr(rl, "make_rollouts", lambda run, mesh=None: async_rollouts.Ahead(
      run, async_rollouts.max_staleness(run.config), sampler_mesh=mesh, threaded=False))


def test_max_staleness_0_is_the_synchronous_loop_bit_for_bit(tmp_path):
  # A config from before the key existed, and one with max_staleness = 0: the same numbers,
  # those the trainer wrote before the step was reshaped (the golden), and no sampler thread.
  old = load_config("grpo:tiny")
  del old.rollout["max_staleness"], old.mesh["sampler_devices"]
  train_rl(old, str(tmp_path / "old"), progress=False)
  trainer = RLTrainer(load_config("grpo:tiny", {"rollout.max_staleness": 0}),
                      str(tmp_path / "zero"), progress=False)
  assert isinstance(trainer.rollouts, async_rollouts.Synchronous)
  trainer.run()
  assert not [t for t in threading.enumerate() if t.name == "sampler"]
  zero = _rows(tmp_path / "zero")
  assert zero == _rows(tmp_path / "old")                     # exact float equality
  assert not any(k.startswith("rollout/") for r in zero for k in r)
  _SMOKE.assert_metrics_equal_golden("grpo", read_metrics(str(tmp_path / "zero")))
  for a, b in zip(_params(tmp_path / "zero"), _params(tmp_path / "old")):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("k,sampler_devices", [(1, 0), (2, 4)])
def test_sampler_ahead_tags_staleness_and_equals_the_inline_schedule(k, sampler_devices,
                                                                     tmp_path, monkeypatch):
  overrides = {**BASE, "rollout.max_staleness": k, "mesh.sampler_devices": sampler_devices}
  trainer = RLTrainer(load_config("grpo:tiny", overrides), str(tmp_path / "thread"),
                      progress=False)
  assert len(trainer.mesh.devices.flat) == 8 - sampler_devices
  if sampler_devices:
    assert not set(trainer.sampler_mesh.devices.flat) & set(trainer.mesh.devices.flat)
  trainer.run()
  rows = _rows(tmp_path / "thread")
  staleness = [min(s, k) for s in range(BASE["total_steps"])]
  assert [r["rollout/staleness_mean"] for r in rows] == staleness
  assert [r["rollout/staleness_max"] for r in rows] == staleness
  for key in ("mismatch/kl", "mismatch/is_weight_mean", "mismatch/is_weight_max",
              "mismatch/ess", "mismatch/masked_frac"):
    assert all(key in r for r in rows), key
  assert rows[0]["mismatch/kl"] < 1e-6 < rows[-1]["mismatch/kl"]   # fresh, then stale
  assert not [t for t in threading.enumerate() if t.name == "sampler"]
  _inline(monkeypatch)
  train_rl(load_config("grpo:tiny", overrides), str(tmp_path / "inline"), progress=False)
  assert _rows(tmp_path / "inline") == rows                  # exact float equality
  for a, b in zip(_params(tmp_path / "inline"), _params(tmp_path / "thread")):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_resume_with_staleness_redraws_from_the_restored_policy(tmp_path):
  # Stop after step 3 (its checkpoint), resume to 6. Guarantee (docs/async.md): steps up to
  # the checkpoint are the uninterrupted run's; after it the dropped rollouts are redrawn by
  # the restored policy (staleness 0, 1, then k); resuming the same checkpoint twice gives
  # the same run.
  config = lambda steps: load_config("grpo:tiny", {**BASE, "rollout.max_staleness": 1,
                                                   "total_steps": steps, "eval_every": 6,
                                                   "checkpoint_every": 3})
  train_rl(config(6), str(tmp_path / "straight"), progress=False)
  train_rl(config(3), str(tmp_path / "a"), progress=False)
  shutil.copytree(tmp_path / "a", tmp_path / "b")
  for name in ("a", "b"):
    train_rl(config(6), str(tmp_path / name), progress=False)
  straight, a = _rows(tmp_path / "straight"), _rows(tmp_path / "a")
  assert [r["step"] for r in a] == list(range(1, 7))
  for got, want in zip(a[:3], straight[:3]):
    assert {k: got[k] for k in want} == want
  assert [r["rollout/staleness_mean"] for r in a] == [0, 1, 1, 0, 1, 1]
  assert a == _rows(tmp_path / "b")                          # resume is deterministic


def test_bad_staleness_and_sampler_devices_fail_at_start_up_in_one_line(tmp_path):
  from explore_rl.training.validate import validate_config
  for overrides, match in [
      ({"rollout.max_staleness": -1}, "max_staleness must be an integer >= 0"),
      ({"mesh.sampler_devices": 2}, "set config.rollout.max_staleness >= 1"),
      ({"mesh.sampler_devices": -1}, "sampler_devices must be an integer >= 0")]:
    with pytest.raises(ConfigError, match=match) as e:
      validate_config(load_config("grpo:tiny", overrides))
    assert "\n" not in str(e.value)
  config = load_config("grpo:tiny", {"rollout.max_staleness": 1, "mesh.sampler_devices": 8})
  with pytest.raises(ConfigError, match="must leave the learner at least one device") as e:
    RLTrainer(config, str(tmp_path / "run"), progress=False)
  assert "\n" not in str(e.value) and not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("args,match", [
    (["--config.rollout.max_staleness=-1"], "max_staleness must be an integer >= 0"),
    (["--config.rollout.max_staleness=1", "--config.mesh.sampler_devices=8"],
     "leave the learner at least one device"),
    (["--config.rollout.max_staleness=1", "--config.objective.loss=cispo",
      "--config.objective.is_correction=token_tis"], "weights a policy loss that takes it"),
])
def test_cli_prints_one_line_and_exits_2(args, match, tmp_path):
  proc = subprocess.run(
      [sys.executable, "-m", "explore_rl.cli", "train", "--config", "configs/grpo.py:tiny",
       "--workdir", str(tmp_path / "run"), *args], capture_output=True, text=True,
      cwd=str(pathlib.Path(__file__).resolve().parents[2]))
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert match in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
