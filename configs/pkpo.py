"""PKPO (Walder & Karkhanis, arXiv 2505.15201): optimise pass@k directly with the
unbiased s^(loo-1) estimator, k = 4 of n = 8.

Command:  explore-rl train --config configs/pkpo.py --workdir runs/pkpo
Hardware: 2 CPU cores. Runtime: 103 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.223, distinct 1.84, pass@8 0.938, pass@1 0.401
(GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "pkpo"
  c.objective.advantage_kwargs = dict(k=4)
  return c
