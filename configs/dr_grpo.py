"""Dr. GRPO (arXiv 2503.20783): no std normalisation, constant length normaliser.

Command:  explore-rl train --config configs/dr_grpo.py --workdir runs/dr_grpo
Hardware: 2 CPU cores. Runtime: 101 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.225, distinct 1.68, pass@8 0.891, pass@1 0.395
(GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "dr_grpo"
  c.objective.aggregation = "seq-mean-token-sum-norm"
  c.objective.aggregation_kwargs.norm = c.max_response_len
  return c
