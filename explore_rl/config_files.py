"""Load `configs/<name>.py[:arg]` files as the CLI does, from Python (demo, tests, notebooks)."""
from __future__ import annotations

import importlib.util
import os
from typing import Mapping

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def config_names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f[0] != "_")


def load_config(spec: str, overrides: Mapping[str, object] | None = None):
  """`spec` is a path or a name in configs/, optionally `:arg`; overrides use dotted keys."""
  path, _, arg = spec.partition(":")
  if not path.endswith(".py"):
    if path not in config_names():
      raise ValueError(f"unknown config {path!r}; valid: {', '.join(config_names())}")
    path = os.path.join(CONFIG_DIR, path + ".py")
  module_spec = importlib.util.spec_from_file_location("explore_rl_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  for key, value in (overrides or {}).items():
    node, *rest = key.rsplit(".", 1)
    target = config
    if rest:
      for part in node.split("."):
        target = target[part]
      key = rest[0]
    if key not in target:
      raise KeyError(f"config has no key {key!r}")
    target[key] = value
  return config
