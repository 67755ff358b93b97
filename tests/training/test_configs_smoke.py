"""Every config in configs/ runs end to end on the tiny preset (`:tiny`)."""
import json
import os

import pytest

from explore_rl.config_files import config_names, load_config
from explore_rl.metrics_log import read_metrics

ALL_CONFIGS = config_names()


def test_all_method_configs_exist():
  assert {"sft", "grpo", "dr_grpo", "dapo", "clip_cov", "kl_cov", "polyepo", "pkpo",
          "passk_analytic", "dra", "evol"} <= set(ALL_CONFIGS)


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_config_smoke(name, tmp_path):
  from explore_rl.cli import TRAINERS
  config = load_config(f"{name}:tiny")
  TRAINERS.get(config.get("trainer", "rl"))(config, str(tmp_path))
  rows = read_metrics(str(tmp_path))
  assert [r["step"] for r in rows] == list(range(1, config.total_steps + 1))
  for row in rows:
    assert {"step", "loss", "entropy"} <= set(row)
    if config.trainer == "rl":
      assert "reward_mean" in row and row["updates_skipped"] == 0
  assert "pass@1" in rows[-1] and "distinct_strategies" in rows[-1]
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
