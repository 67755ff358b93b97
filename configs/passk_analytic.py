"""Pass@k Training with analytic advantages (Chen et al., arXiv 2508.10751), k = 4.

Command:  explore-rl train --config configs/passk_analytic.py --workdir runs/passk_analytic
Hardware: 2 CPU cores. Runtime: 112 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.246, distinct 1.98, pass@8 0.961 (the prior's),
pass@1 0.390 (GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "passk_analytic"
  c.objective.advantage_kwargs = dict(k=4)
  return c
