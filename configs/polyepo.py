"""Poly-EPO (arXiv 2604.17654): set RL with the polychromatic objective
f(G) = mean reward x distinct strategies / n, marginal set advantages over all
C(8, 4) = 70 subsets, Dr. GRPO normaliser.

Command:  explore-rl train --config configs/polyepo.py --workdir runs/polyepo
Hardware: 2 CPU cores. Runtime: 95 s (60 steps, quiet machine).
Expected: (measured, five runs) entropy 0.25-0.27, distinct successful strategies 2.0-2.1,
pass@8 0.945-0.97 (GRPO: 0.16-0.20, 1.3-1.7, 0.85-0.91); pass@1 0.37-0.41.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "set_rl"
  c.objective.advantage_kwargs = dict(set_fn="polychromatic", set_size=4, reduce="mean")
  c.objective.aggregation = "seq-mean-token-sum-norm"
  c.objective.aggregation_kwargs.norm = c.max_response_len
  c.objective.loss_kwargs.clip_eps_high = 0.28
  return c
