"""KL-Cov (Cui et al., arXiv 2505.22617): a |logp - old_logp| penalty on the top-k
covariance tokens, no PPO clipping.

Command:  explore-rl train --config configs/kl_cov.py --workdir runs/kl_cov
Hardware: 2 CPU cores. Runtime: 120 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.171, distinct successful strategies 1.38, pass@8
0.922, pass@1 0.407 (GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91): with
~700 valid tokens per mini-batch, k = 2e-3 selects max(floor(kN), 1) = 1 token: too few
here (the paper: entropy > 10x GRPO's at 7B scale).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"
  c.objective.loss = "kl_cov"
  c.objective.loss_kwargs = dict(ratio=2e-3, kl_coef=1.0)
  return c
