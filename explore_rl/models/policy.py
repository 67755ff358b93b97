"""A policy: what it takes to sample from, score with, or train a model."""
from __future__ import annotations

import dataclasses
from typing import Any

from explore_rl.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class Policy:
  """tokenizer + model config + Flax NNX graphdef + params (a plain pytree, maybe sharded).

  Loaders return one (`training.policy_loader.load_policy`, `models.hf_import.load_hf_policy`);
  samplers take them; the trainer swaps in new params with `with_params`.
  """
  tokenizer: Any
  config: ModelConfig
  graphdef: Any
  params: Any

  def with_params(self, params) -> "Policy":
    return dataclasses.replace(self, params=params)
