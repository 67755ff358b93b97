"""Pass@k Training with analytic advantages (Chen et al., arXiv 2508.10751), k = 4.

Command:  explore-rl train --config configs/passk_analytic.py --workdir runs/passk_analytic
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: higher pass@k for k >= 4 than GRPO, entropy kept higher.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "passk_analytic"
  c.objective.advantage_kwargs = dict(k=4)
  return c
