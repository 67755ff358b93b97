"""`validate_config`: every shipped config passes; each bad value fails in one line."""
from __future__ import annotations

import pytest

from explore_rl.config_files import config_names, load_config
from explore_rl.errors import ConfigError
from explore_rl.objectives import ADVANTAGES
from explore_rl.training.validate import is_group_relative, validate_config


@pytest.mark.parametrize("arg", ["", ":tiny"])
@pytest.mark.parametrize("name", config_names())
def test_every_shipped_config_is_valid(name, arg):
  validate_config(load_config(name + arg))


@pytest.mark.parametrize("key,value,match", [
    ("rollout.temperature", 0.0, "temperature must be > 0"),
    ("rollout.temperature", -1.0, "temperature must be > 0"),
    ("rollout.temperature", float("nan"), "temperature must be > 0"),
    ("total_steps", 0, "total_steps must be a positive integer"),
    ("total_steps", -5, "total_steps must be a positive integer"),
    ("eval_every", 0, "eval_every must be a positive integer"),
    ("checkpoint_every", 0, "checkpoint_every must be a positive integer"),
    ("checkpoint_every", -1, "checkpoint_every must be a positive integer"),
    ("rollout.prompts_per_step", 0, "prompts_per_step must be a positive integer"),
    ("rollout.prompts_per_step", -2, "prompts_per_step must be a positive integer"),
    ("max_response_len", 0, "max_response_len must be a positive integer"),
    ("learner.mini_batches", 0, "mini_batches must be a positive integer"),
    ("learner.micro_batches", -1, "micro_batches must be a positive integer"),
    ("rollout.num_samples", 0, "num_samples must be a positive integer"),
    ("eval.temperature", -1.0, "eval.temperature must be >= 0"),
])
@pytest.mark.parametrize("name", ["grpo", "polyepo"])
def test_bad_rl_value_is_rejected_in_one_line(name, key, value, match):
  config = load_config(name + ":tiny", {key: value})
  with pytest.raises(ConfigError, match=match) as e:
    validate_config(config)
  assert "\n" not in str(e.value) and repr(value) in str(e.value)


@pytest.mark.parametrize("advantage", [a for a in ADVANTAGES if is_group_relative(a)])
def test_one_sample_with_a_group_relative_advantage_is_rejected(advantage):
  config = load_config("grpo:tiny", {"objective.advantage": advantage, "rollout.num_samples": 1})
  with pytest.raises(ConfigError, match=f"num_samples=1 with the group-relative advantage "
                                        f"'{advantage}'.*2 or more"):
    validate_config(config)
  config.rollout.num_samples = 2
  validate_config(config)


def test_passk_k_larger_than_the_group_is_rejected():
  config = load_config("pkpo:tiny", {"rollout.num_samples": 3})  # k=4
  with pytest.raises(ConfigError, match=r"advantage_kwargs.k=4 must be between 1 and "
                                        r"config.rollout.num_samples=3"):
    validate_config(config)
  config = load_config("polyepo:tiny", {"rollout.num_samples": 2})  # set_size=4
  with pytest.raises(ConfigError, match="set_size=4"):
    validate_config(config)


@pytest.mark.parametrize("key,value", [
    ("total_steps", 0), ("eval_every", 0), ("checkpoint_every", -3), ("batch_size", 0),
    ("max_response_len", 0), ("eval.num_prompts", -3)])
def test_bad_sft_value_is_rejected(key, value):
  with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
    validate_config(load_config("sft:tiny", {key: value}))


def test_non_integer_counts_are_rejected():
  # ConfigDict keeps a field's type; a config built as plain mappings (or loaded from
  # JSON) does not, so the checks do not rely on it.
  config = load_config("grpo:tiny").to_dict()
  config["total_steps"] = 2.5
  with pytest.raises(ConfigError, match="total_steps must be a positive integer, got 2.5"):
    validate_config(config)
  config = load_config("grpo:tiny").to_dict()
  config["rollout"]["temperature"] = True
  with pytest.raises(ConfigError, match="temperature must be > 0"):
    validate_config(config)
