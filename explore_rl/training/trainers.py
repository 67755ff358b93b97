"""TRAINERS: every trainer by name (`config.trainer`), each `fn(config, workdir, *,
progress=True, allow_method_change=False) -> final metrics`. The modules load on use, so
that `explore-rl --help` does not import JAX's training stack."""
from __future__ import annotations

from explore_rl.registry import Registry

TRAINERS: Registry = Registry("trainer")


@TRAINERS.register("sft")
def _train_sft(config, workdir, **kwargs):
  from explore_rl.training.sft import train_sft
  return train_sft(config, workdir, **kwargs)


@TRAINERS.register("rl")
def _train_rl(config, workdir, **kwargs):
  from explore_rl.training.rl import train_rl
  return train_rl(config, workdir, **kwargs)


@TRAINERS.register("explore_exploit")
def _train_explore_exploit(config, workdir, **kwargs):
  from explore_rl.training.two_policy import train_two_policy
  return train_two_policy(config, workdir, **kwargs)


@TRAINERS.register("preference")
def _train_preference(config, workdir, **kwargs):
  from explore_rl.training.preference_trainer import train_preference
  return train_preference(config, workdir, **kwargs)
