"""Clip-Cov (Cui et al., arXiv 2505.22617): detach the gradient of a random few
high-covariance tokens.

Command:  explore-rl train --config configs/clip_cov.py --workdir runs/clip_cov
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: entropy stays above GRPO's; the paper's defaults r = 2e-4, w = (1, 5)
act on few tokens at this batch size, so the ratio is raised to 2e-2 here.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"
  c.objective.loss = "clip_cov"
  c.objective.loss_kwargs = dict(ratio=2e-2, cov_lb=1.0, cov_ub=5.0, clip_eps_low=0.2,
                                 clip_eps_high=0.2)
  return c
