"""Clip-Cov (Cui et al., arXiv 2505.22617): detach the gradient of a random few
high-covariance tokens.

Command:  explore-rl train --config configs/clip_cov.py --workdir runs/clip_cov
Hardware: 2 CPU cores. Runtime: 120 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.214, distinct 1.73, pass@8 0.945, pass@1 0.399
(GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91). The paper's r = 2e-4
would act on max(floor(rN), 1) = 1 of ~700 tokens per mini-batch here, so the ratio is
raised to 2e-2 (~14 tokens).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"
  c.objective.loss = "clip_cov"
  c.objective.loss_kwargs = dict(ratio=2e-2, cov_lb=1.0, cov_ub=5.0, clip_eps_low=0.2,
                                 clip_eps_high=0.2)
  return c
