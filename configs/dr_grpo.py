"""Dr. GRPO (arXiv 2503.20783): no std normalisation, constant length normaliser.

Command:  explore-rl train --config configs/dr_grpo.py --workdir runs/dr_grpo
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: like GRPO, without the length and difficulty biases of the std and
per-sequence means.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "dr_grpo"
  c.objective.aggregation = "seq-mean-token-sum-norm"
  c.objective.aggregation_kwargs.norm = c.max_response_len
  return c
