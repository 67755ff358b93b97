"""KL-Cov (Cui et al., "The Entropy Mechanism of Reinforcement Learning for Reasoning
Language Models", arXiv 2505.22617): a |logp - old_logp| penalty on the top-k covariance
tokens, no PPO clipping.

Settings: the method's, exactly as the authors' published 7B KL-Cov training recipe runs
it: k = 2e-3 of the valid tokens (the recipe's k_percent = 0.2, a percentage), penalty
coefficient 1 (ppo_kl_coef), GRPO advantages, token-mean loss, no KL to a reference, no
entropy bonus. The recipe's PPO clip 0.2 / 0.2 is not read by its KL-Cov loss (no
clipping); its 32B recipe uses k = 2e-4 (set objective.loss_kwargs.ratio). What the recipe
shares with its GRPO baseline (dynamic sampling, learning rate 5e-7, 256 prompts x 8
responses in mini-batches of 32 prompts) is this project's scale instead, as
configs/grpo.py sets it. The tokens are chosen over the whole mini-batch (the recipe: per
micro-batch on each device; training/update.py). At ~700 valid tokens per mini-batch here,
k = 2e-3 selects max(floor(kN), 1) = 1 token.

`:small_scale`: a tuning for this project's scale, not the paper's: k = 0.05 (~35 tokens
per mini-batch).

Command:  explore-rl train --config configs/kl_cov.py --workdir runs/kl_cov
          (configs/kl_cov.py:small_scale for the small-scale tuning)
Hardware: 2 CPU cores. Runtime: 120 s (60 steps, from runs/demo/sft).
Expected: (measured, one run) entropy 0.171, distinct successful strategies 1.38, pass@8
0.922, pass@1 0.407 (GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91): one
token per mini-batch is too few here (the paper: entropy > 10x GRPO's at 7B scale).
`:small_scale`: see experiments/entropy_mechanism.py (results/entropy_mechanism/table.md).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  if arg not in (None, "", "tiny", "small_scale"):
    raise ValueError(f"unknown config arg {arg!r}; valid: tiny, small_scale")
  c = rl_config("tiny" if arg == "tiny" else None)
  c.objective.advantage = "grpo"
  c.objective.loss = "kl_cov"
  c.objective.aggregation = "token-mean"
  c.objective.loss_kwargs = dict(ratio=2e-3 if arg != "small_scale" else 0.05, kl_coef=1.0)
  return c
