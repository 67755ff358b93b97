"""TRAINERS: every trainer by name (`config.trainer`), each `fn(config, workdir, *,
progress=True, allow_method_change=False) -> final metrics`. The modules load on use, so
that `explore-rl --help` does not import JAX's training stack. A process that starts run
after run first frees the executables of earlier runs if they near the kernel's
memory-mapping limit (`executables.release_if_near_limit`)."""
from __future__ import annotations

import importlib

from explore_rl import executables
from explore_rl.registry import Registry

TRAINERS: Registry = Registry("trainer")

_BUILT_IN = {   # name: (module, function)
    "sft": ("explore_rl.training.sft", "train_sft"),
    "rl": ("explore_rl.training.rl", "train_rl"),
    "explore_exploit": ("explore_rl.training.two_policy", "train_two_policy"),
    "preference": ("explore_rl.training.preference_trainer", "train_preference"),
}


def _on_use(module: str, function: str):
  def train(config, workdir, **kwargs):
    executables.release_if_near_limit()
    return getattr(importlib.import_module(module), function)(config, workdir, **kwargs)
  return train


for _name, (_module, _function) in _BUILT_IN.items():
  TRAINERS.register(_name)(_on_use(_module, _function))
