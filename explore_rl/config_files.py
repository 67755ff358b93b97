"""Load `configs/<name>.py[:arg]` files as the CLI does, from Python (demo, tests, notebooks)."""
from __future__ import annotations

import importlib.util
import os
from typing import Mapping

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def config_names() -> list[str]:
  return sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f[0] != "_")


def takes_new_keys(name: str) -> bool:
  """Whether the config dict `name` accepts keys its config file does not define: a
  hyper-parameter dict (`*_kwargs`), whose keys are its component's, `objective.loss_terms`,
  whose keys are registered loss terms, and `model_overrides`, whose keys are `ModelConfig`
  fields (checked when the model is built). Anywhere else a new key is a misspelling."""
  return name.endswith("_kwargs") or name in ("model_overrides", "loss_terms")


def load_config(spec: str, overrides: Mapping[str, object] | None = None):
  """`spec` is a path or a name in configs/, optionally `:arg`; overrides use dotted keys,
  new ones only inside the dicts that take them (`takes_new_keys`)."""
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
    if key not in target and not (rest and takes_new_keys(node.rsplit(".", 1)[-1])):
      raise KeyError(f"config has no key {key!r}")
    target[key] = value
  return config
