"""Poly-EPO (arXiv 2604.17654): set RL with the polychromatic objective
f(G) = mean reward x distinct strategies / n, marginal set advantages over all
C(8, 4) = 70 subsets, Dr. GRPO normaliser.

Command:  explore-rl train --config configs/polyepo.py --workdir runs/polyepo
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: pass@8 and distinct successful strategies per prompt above GRPO's at
similar pass@1; see runs/demo/report.md.
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
