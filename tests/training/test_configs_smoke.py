"""Every config in configs/ runs end to end on the tiny preset (`:tiny`), and the runs of
the step-equality configs write the metrics they wrote before the RL step was reshaped."""
import json
import os
import pathlib
import re

import numpy as np
import pytest

from explore_rl.config_files import config_names, load_config
from explore_rl.metrics_log import read_metrics

ALL_CONFIGS = config_names()
# metrics.jsonl of fixed-seed `:tiny` runs, recorded from the trainer before it was split
# into components (training/step.py): a refactor of the step must not change a number.
# Timings are left out (wall clock); everything else must match to float tolerance.
GOLDEN = json.loads((pathlib.Path(__file__).parent / "step_equality_golden.json").read_text())
_TIMING = re.compile(r"(^|/)(time_|step_time|tokens_per_s)")


def assert_metrics_equal_golden(name: str, rows: list[dict]):
  golden = GOLDEN[name]
  assert len(rows) == len(golden), name
  for row, want in zip(rows, golden):
    got = {k: v for k, v in row.items() if not _TIMING.search(k)}
    assert set(got) == set(want), (name, row["step"], set(got) ^ set(want))
    for key, value in want.items():
      np.testing.assert_allclose(np.asarray(got[key], float), np.asarray(value, float),
                                 rtol=1e-5, atol=1e-6, err_msg=f"{name} step {row['step']} {key}")


def test_step_equality_configs_have_goldens():
  assert set(GOLDEN) == {"grpo", "polyepo", "clip_cov", "self_distill", "explore_exploit"}


def test_all_method_configs_exist():
  assert {"sft", "grpo", "dr_grpo", "dapo", "clip_cov", "kl_cov", "polyepo", "pkpo",
          "passk_analytic", "dra", "evol"} <= set(ALL_CONFIGS)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_smoke(name, tmp_path):
  from explore_rl.training.trainers import TRAINERS
  config = load_config(f"{name}:tiny")
  TRAINERS.get(config.get("trainer", "rl"))(config, str(tmp_path))
  rows = read_metrics(str(tmp_path))
  assert [r["step"] for r in rows] == list(range(1, config.total_steps + 1))
  for row in rows:
    assert {"step", "loss", "entropy"} <= set(row)
    if config.trainer == "rl":
      assert "reward_mean" in row and row["updates_skipped"] == 0
  assert "pass@1" in rows[-1] and "distinct_strategies" in rows[-1]
  if name in GOLDEN:
    assert_metrics_equal_golden(name, rows)
  assert json.load(open(tmp_path / "config.json"))["task"] == config.task
  assert os.listdir(tmp_path / "tensorboard")
  assert os.listdir(tmp_path / "checkpoints")


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_docstring_says_command_hardware_runtime_expected(name):
  import importlib.util
  from explore_rl.config_files import CONFIG_DIR
  spec = importlib.util.spec_from_file_location("c", os.path.join(CONFIG_DIR, name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  doc = module.__doc__ or ""
  for word in ("Command:", "Hardware:", "Runtime:", "Expected:"):
    assert word in doc, f"configs/{name}.py docstring lacks {word!r}"
  assert f"configs/{name}.py" in doc


def test_unknown_config_name_lists_valid_ones():
  with pytest.raises(ValueError, match="valid: .*grpo"):
    load_config("grpox")
