"""KL-Cov (Cui et al., arXiv 2505.22617): a |logp - old_logp| penalty on the top-k
covariance tokens, no PPO clipping.

Command:  explore-rl train --config configs/kl_cov.py --workdir runs/kl_cov
Hardware: 2 CPU cores. Runtime: ~3 minutes.
Expected: entropy well above GRPO's (the paper: > 10x at 7B scale).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"
  c.objective.loss = "kl_cov"
  c.objective.loss_kwargs = dict(ratio=2e-3, kl_coef=1.0)
  return c
