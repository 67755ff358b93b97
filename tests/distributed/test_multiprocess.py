"""A pod on one machine: 2 processes x 4 virtual CPU devices (JAX's multi-controller
runtime, gloo collectives) train exactly as 1 process x 8 devices.

Each multi-process run is `explore-rl train --distributed --coordinator_address
localhost:PORT --num_processes 2 --process_id i` in two subprocesses, the README's
commands. Compared with the in-process 8-device run of the same config: every metric
of every step (the RL steps and the eval, to 1e-5) and the checkpointed parameters.
"""
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from explore_rl import compile_cache
from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.models import sharding
from explore_rl.training.rl import train_rl
from explore_rl.training.sft import train_sft
from explore_rl.training.policy_loader import fresh_policy, load_policy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMING = ("time_", "step_time", "tokens_per_s")
TIMEOUT_S = 420
# The smallest RL run that still moves the parameters (an entropy bonus: the untrained
# model earns no reward) and splits over 8 devices: 4 prompts x 4 samples, 2 mini-batches.
RL = {"rollout.num_samples": 4, "max_response_len": 12, "objective.entropy_coef": 0.05,
      "optim.learning_rate": 1e-2}
SFT = {"total_steps": 3, "eval_every": 2, "checkpoint_every": 2, "max_response_len": 12}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def run_processes(spec: str, overrides: dict, workdir: str, num_processes: int = 2):
  """`explore-rl train` of `spec` in `num_processes` processes of 8/P CPU devices each;
  fails (with their output) when one exits non-zero or the run outlasts TIMEOUT_S."""
  port = _free_port()
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=(
      f"--xla_force_host_platform_device_count={8 // num_processes}"))
  env[compile_cache.ENV] = compile_cache.resolve() or "off"
  name, _, arg = spec.partition(":")
  args = [f"--config={REPO}/configs/{name}.py" + (f":{arg}" if arg else ""),
          *(f"--config.{k}={v}" for k, v in overrides.items())]
  procs = [subprocess.Popen(
      [sys.executable, "-m", "explore_rl.cli", "train", "--workdir", workdir, *args,
       "--distributed", f"--coordinator_address=localhost:{port}",
       f"--num_processes={num_processes}", f"--process_id={i}"],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(num_processes)]
  outputs = []
  try:
    for p in procs:
      outputs.append(p.communicate(timeout=TIMEOUT_S)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  for i, (p, out) in enumerate(zip(procs, outputs)):
    assert p.returncode == 0, f"process {i} exited with {p.returncode}:\n{out[-3000:]}"


def assert_same_metrics(reference: str, other: str):
  want, got = read_metrics(reference), read_metrics(other)
  assert [r["step"] for r in got] == [r["step"] for r in want]
  for a, b in zip(want, got):
    assert a.keys() == b.keys()
    for k, v in a.items():
      if not k.startswith(TIMING):
        np.testing.assert_allclose(b[k], v, rtol=1e-5, atol=1e-5, err_msg=f"step {a['step']}: {k}")


def assert_same_params(reference: str, other: str, atol: float = 1e-4):
  """Parameters equal to `atol`. Not bitwise: gloo's all-reduce sums the gradient shards
  in another order than the in-process one (~1e-7 relative), and Adam's g/√v turns that
  into up to ~3e-5 where a gradient is near 0; the updates compared move every weight
  by ~1e-2 (`moved` below), 100x more than the tolerance."""
  want = jax.device_get(load_policy(reference).params)
  got = jax.device_get(load_policy(other).params)
  assert jax.tree.structure(want) == jax.tree.structure(got)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(b, a, rtol=0, atol=atol)


@pytest.mark.slow
def test_two_processes_train_rl_as_one_process_of_eight_devices(tmp_path):
  config = load_config("grpo:tiny", RL)              # 2 steps, eval at step 2
  train_rl(config, str(tmp_path / "one"), progress=False)
  run_processes("grpo:tiny", RL, str(tmp_path / "two"))
  assert_same_metrics(str(tmp_path / "one"), str(tmp_path / "two"))
  rows = read_metrics(str(tmp_path / "two"))
  assert rows[-1]["grad_norm"] > 0 and "pass@1" in rows[-1]
  assert_same_params(str(tmp_path / "one"), str(tmp_path / "two"))
  initial = fresh_policy(config, sharding.make_mesh({"num_devices": 1})).params
  moved = [np.abs(a - b).max() for a, b in zip(
      jax.tree.leaves(jax.device_get(load_policy(str(tmp_path / "two")).params)),
      jax.tree.leaves(jax.device_get(initial)))]
  assert min(moved) > 1e-2                           # every weight really trained


@pytest.mark.slow
def test_two_processes_save_resume_and_train_sft_as_one_process(tmp_path):
  # 2 processes save at step 2 and stop; 2 new processes restore it (Orbax, every process)
  # and train step 3: the same metrics and parameters as one 8-device process, straight.
  train_sft(load_config("sft:tiny", SFT), str(tmp_path / "one"), progress=False)
  run_processes("sft:tiny", {**SFT, "total_steps": 2}, str(tmp_path / "two"))
  run_processes("sft:tiny", SFT, str(tmp_path / "two"))
  assert_same_metrics(str(tmp_path / "one"), str(tmp_path / "two"))
  assert_same_params(str(tmp_path / "one"), str(tmp_path / "two"))


@pytest.mark.slow
def test_two_processes_with_the_sampler_one_version_ahead_train_as_one_process(tmp_path):
  # max_staleness 1 with the sampler on devices of its own (2 of each process's 4; the
  # learner keeps 2 + 2): the processes draw inline, in one order (training/async_rollouts.py),
  # and write the metrics one 8-device process writes with its sampler thread.
  overrides = {**RL, "rollout.max_staleness": 1, "mesh.sampler_devices": 4, "total_steps": 3,
               "eval_every": 3, "checkpoint_every": 3}
  train_rl(load_config("grpo:tiny", overrides), str(tmp_path / "one"), progress=False)
  run_processes("grpo:tiny", overrides, str(tmp_path / "two"))
  assert_same_metrics(str(tmp_path / "one"), str(tmp_path / "two"))
  rows = read_metrics(str(tmp_path / "two"))
  assert [r["rollout/staleness_max"] for r in rows] == [0, 1, 1]
  assert rows[-1]["mismatch/kl"] > 0 and "pass@1" in rows[-1]
  # Three updates, not two: gloo's reduction order moved one weight in 6336 by 1.4e-4
  # (a near-zero gradient under Adam, as `assert_same_params` explains).
  assert_same_params(str(tmp_path / "one"), str(tmp_path / "two"), atol=5e-4)
