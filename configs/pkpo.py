"""PKPO (Walder & Karkhanis, arXiv 2505.15201): optimise pass@k directly with the
unbiased s^(loo-1) estimator, k = 4 of n = 8.

Command:  explore-rl train --config configs/pkpo.py --workdir runs/pkpo
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: pass@4 / pass@8 above GRPO's; pass@1 may be lower.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "pkpo"
  c.objective.advantage_kwargs = dict(k=4)
  return c
