"""The `explore-rl` command line: train with overrides, eval, sample, SIGINT save + resume."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from explore_rl.metrics_log import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Subprocesses share the suite's persistent compilation cache (see conftest.py).
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
       "JAX_COMPILATION_CACHE_DIR": os.path.join(ROOT, ".jax_cache"),
       "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5"}


def cli(*args, **kw):
  return subprocess.run([sys.executable, "-m", "explore_rl.cli", *args], cwd=ROOT, env=ENV,
                        capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("cli") / "run")
  out = cli("train", "--config", "configs/grpo.py:tiny", "--workdir", workdir,
            "--config.total_steps=3", "--config.eval_every=3", "--config.rollout.num_samples=4")
  assert out.returncode == 0, out.stderr[-3000:]
  return workdir


def test_train_applies_overrides_and_writes_run_files(trained):
  rows = read_metrics(trained)
  assert [r["step"] for r in rows] == [1, 2, 3]
  config = json.load(open(os.path.join(trained, "config.json")))
  assert config["total_steps"] == 3 and config["rollout"]["num_samples"] == 4
  assert {"step", "reward_mean", "entropy", "loss", "pass@1", "pass@4"} <= set(rows[-1])


def test_override_with_wrong_type_is_rejected(tmp_path):
  out = cli("train", "--config", "configs/grpo.py:tiny", "--workdir", str(tmp_path),
            "--config.total_steps=many")
  assert out.returncode == 2 and "total_steps" in out.stderr


def test_unknown_command_and_missing_workdir():
  assert "usage: explore-rl" in cli("fly", "--workdir", "x").stderr
  assert "--workdir is required" in cli("eval").stderr


def test_eval_and_sample(trained):
  out = cli("eval", "--workdir", trained, "--num_prompts", "4", "--num_samples", "4")
  assert out.returncode == 0, out.stderr[-3000:]
  metrics = json.load(open(os.path.join(trained, "eval.json")))
  assert {"pass@1", "pass@4", "distinct_strategies", "eval_entropy"} <= set(metrics)
  out = cli("sample", "--workdir", trained, "--num_prompts", "2", "--num_samples", "3")
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.count("sum ") == 2 and out.stdout.count("r=") == 6


@pytest.mark.slow
def test_sigint_saves_and_the_same_command_resumes(tmp_path):
  args = ["train", "--config", "configs/grpo.py:tiny", "--workdir", str(tmp_path),
          "--config.total_steps=400", "--config.eval_every=1000",
          "--config.checkpoint_every=1000"]
  proc = subprocess.Popen([sys.executable, "-m", "explore_rl.cli", *args], cwd=ROOT, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = tmp_path / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
    time.sleep(0.5)
  proc.send_signal(signal.SIGINT)
  stdout, stderr = proc.communicate(timeout=300)
  assert proc.returncode == 0, stderr[-3000:]
  assert "SIGINT: saved step" in stdout
  saved = int(stdout.split("saved step ")[1].split()[0])
  assert 2 <= saved < 400
  assert sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())[-1] == saved
  # The same command resumes after the saved step.
  out = cli(*args[:-3], "--config.total_steps=%d" % (saved + 1), "--config.eval_every=1000",
            "--config.checkpoint_every=1000")
  assert out.returncode == 0, out.stderr[-3000:]
  assert [r["step"] for r in read_metrics(str(tmp_path))][-2:] == [saved, saved + 1]


@pytest.mark.parametrize("args,needle", [
    # the RL config before its SFT prior exists
    (("train", "--config", "configs/grpo.py", "--config.init_from=/nonexistent/sft"),
     "explore-rl train --config configs/sft.py"),
    (("train", "--config", "configs/nope.py"), "the configs in configs/"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.total_steps=many"), "total_steps"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.no_such_key=1"),
     "unknown config key"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.rollout.tempreature=0.5"),
     "unknown config key 'rollout.tempreature'"),
    # a new key inside a *_kwargs dict is the component's: accepted (the run then stops at
    # the temperature, the next check)
    (("train", "--config", "configs/grpo.py:tiny", "--config.judge_kwargs.api_key_env=KEY",
      "--config.task_kwargs.max_parts=3", "--config.rollout.temperature=-1"), "temperature"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.task_kwargs.a.b=1"),
     "unknown config key"),
    # model_overrides takes ModelConfig's fields, checked when the model is built
    (("train", "--config", "configs/grpo.py:tiny", "--config.model_overrides.matmul_dtype=fp8"),
     "matmul_dtype='fp8'; valid"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.model_overrides.hiden_size=8"),
     "unknown model field(s) ['hiden_size']"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.rollout.sampler=nope"),
     "unknown sampler 'nope'; valid"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.judge=nope"),
     "unknown judge 'nope'; valid"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.rollout.temperature=-1"),
     "temperature"),
    (("train", "--config", "configs/grpo.py:tiny", "--config.objective.advantage=gpro"),
     "valid names"),
    (("train", "--config", "configs/grpo.py:tiny", "--num_processes=2"),
     "only apply with --distributed"),
    (("train", "--config", "configs/grpo.py:tiny", "--distributed", "--num_processes=2",
      "--process_id=2"), "--process_id=2 is not in 0..1"),
    (("eval", "--num_prompts", "-3"), "num_prompts"),
    (("sample", "--num_prompts", "0"), "num_prompts"),
])
def test_user_errors_are_one_line_with_exit_code_2(tmp_path, args, needle):
  workdir = tmp_path / "run"
  out = cli(*args, "--workdir", str(workdir))
  assert out.returncode == 2, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  errors = [line for line in out.stderr.splitlines() if line.startswith("explore-rl: error:")]
  assert len(errors) == 1 and needle in errors[0], out.stderr[-2000:]
  assert not workdir.exists()          # nothing written for a command that failed to start
