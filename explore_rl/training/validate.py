"""Config checks that run before any work: a bad value fails at start-up in one line.

Without these, a bad value costs a full step (or a whole run) before it shows:
`eval_every=0` crashes after the first step, `rollout.temperature=-1` samples at
1 but scores log-probs at -1, `0` gives NaN, and `rollout.num_samples=1` under a
group-relative advantage gives every sample advantage 0, so nothing is learned.
`validate_config` reads only the config (no model, no files), so the trainers
and the CLI call it before they create the workdir: a rejected config leaves no
partial run behind (docs/design.md, "Configs").

RL configs (`explore_rl.training.rl_config`) and SFT configs (`configs/sft.py`,
`trainer == "sft"`) have different keys; each check runs when its key exists.
"""
from __future__ import annotations

from typing import Any

from explore_rl.errors import ConfigError
from explore_rl.objectives import ADVANTAGES

# Keys that must be positive integers wherever they exist (dotted paths).
POSITIVE_INTS = ("total_steps", "eval_every", "checkpoint_every", "keep_checkpoints",
                 "max_prompt_len", "max_response_len", "batch_size", "demos_per_problem",
                 "rollout.prompts_per_step", "rollout.num_samples", "learner.epochs",
                 "learner.mini_batches", "learner.micro_batches", "eval.num_prompts",
                 "eval.num_samples")


def _get(config: Any, dotted: str) -> tuple[bool, Any]:
  """(found, value) of `a.b.c` in a ConfigDict or nested mapping."""
  node = config
  for part in dotted.split("."):
    try:
      if part not in node:
        return False, None
      node = node[part]
    except TypeError:  # Not a mapping (e.g. `rollout` set to a number).
      return False, None
  return True, node


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def is_group_relative(advantage: str) -> bool:
  """Whether the registered advantage compares the samples of one prompt's group (a
  baseline, a rank, a leave-one-out or subset estimate): with one sample per prompt it
  gives every sample the same advantage, so the policy never moves. An advantage that
  does not say is taken to be group-relative; an unknown name fails later, listing the
  valid ones."""
  return advantage in ADVANTAGES and ADVANTAGES.info(advantage).get("group_relative", True)


def validate_config(config: Any) -> None:
  """Raises `ConfigError` (one line: the key, the value, the fix) for the first bad value.

  Checks every key of `POSITIVE_INTS` that exists, `rollout.temperature > 0`,
  `rollout.max_staleness` and `mesh.sampler_devices` >= 0 (devices only with a staleness;
  whether they leave the learner a device is checked where the mesh is made,
  `async_rollouts.split_devices`), at least 2 samples per prompt for a group-relative advantage, and a pass@k
  `k` / set size no larger than the group.
  """
  for key in POSITIVE_INTS:
    found, value = _get(config, key)
    if found and value is not None and (not _is_int(value) or value <= 0):
      raise ConfigError(f"config.{key} must be a positive integer, got {value!r}")

  found, temperature = _get(config, "rollout.temperature")
  if found and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not temperature > 0):  # `not >` also rejects NaN.
    raise ConfigError(f"config.rollout.temperature must be > 0 for training (the sampler and "
                      f"the learner both divide by it), got {temperature!r}")
  found, temperature = _get(config, "eval.temperature")
  if found and (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not temperature >= 0):
    raise ConfigError(f"config.eval.temperature must be >= 0 (0 is greedy), got {temperature!r}")

  found, staleness = _get(config, "rollout.max_staleness")
  if found and (not _is_int(staleness) or staleness < 0):
    raise ConfigError(f"config.rollout.max_staleness must be an integer >= 0 (0 samples and "
                      f"trains in lock-step), got {staleness!r}")
  found, sampler_devices = _get(config, "mesh.sampler_devices")
  if found and (not _is_int(sampler_devices) or sampler_devices < 0):
    raise ConfigError(f"config.mesh.sampler_devices must be an integer >= 0 (0: the sampler "
                      f"shares the learner's devices), got {sampler_devices!r}")
  if found and sampler_devices and not staleness:
    raise ConfigError(f"config.mesh.sampler_devices={sampler_devices} gives the sampler devices "
                      "of its own, which only a sampler running ahead uses: set "
                      "config.rollout.max_staleness >= 1, or sampler_devices=0")

  found, advantage = _get(config, "objective.advantage")
  _, num_samples = _get(config, "rollout.num_samples")
  if found and _is_int(num_samples):
    if is_group_relative(advantage) and num_samples < 2:
      raise ConfigError(
          f"config.rollout.num_samples={num_samples} with the group-relative advantage "
          f"{advantage!r}: every sample gets advantage 0 and nothing is learned; set "
          f"--config.rollout.num_samples to 2 or more")
    _, kwargs = _get(config, "objective.advantage_kwargs")
    for name in ("k", "set_size"):
      found, value = _get(kwargs or {}, name)
      if found and _is_int(value) and not 1 <= value <= num_samples:
        raise ConfigError(
            f"config.objective.advantage_kwargs.{name}={value} must be between 1 and "
            f"config.rollout.num_samples={num_samples}")
