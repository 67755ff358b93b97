"""Clip-Cov (Cui et al., "The Entropy Mechanism of Reinforcement Learning for Reasoning
Language Models", arXiv 2505.22617): the gradient of a random few high-covariance tokens
detached.

Settings: the method's, exactly as the authors' published Clip-Cov training recipes run it
(the 7B and the 32B recipe agree): PPO clip ratio 1 below and above (ρ clipped to [0, 2]),
clip-cov ratio r = 2e-4, covariance bounds (ω_low, ω_high) = (1, 5), GRPO advantages,
token-mean loss, no KL, no entropy bonus, no dual clip (the recipe's clip_ratio_c = 10 is
not read by its Clip-Cov loss). What the recipe shares with its GRPO baseline (dynamic
sampling, learning rate 5e-7, 256 prompts x 8 responses in mini-batches of 32 prompts) is
this project's scale instead, as configs/grpo.py sets it. The tokens are chosen over the
whole mini-batch (the recipe: per micro-batch on each device; training/update.py).
At ~700 valid tokens per mini-batch here, r = 2e-4 acts on max(floor(rN), 1) = 1 token.

`:small_scale`: a tuning for this project's scale, not the paper's: r = 2e-2 (~14 tokens
per mini-batch) with PPO's usual clip 0.2 / 0.2.

Command:  explore-rl train --config configs/clip_cov.py --workdir runs/clip_cov
          (configs/clip_cov.py:small_scale for the small-scale tuning)
Hardware: 2 CPU cores. Runtime: 120 s (60 steps, from runs/demo/sft).
Expected: `:small_scale` (measured, one run) entropy 0.214, distinct 1.73, pass@8 0.945,
pass@1 0.399 (GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91). The paper's
settings, in experiments/entropy_mechanism.py (results/entropy_mechanism/table.md).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  if arg not in (None, "", "tiny", "small_scale"):
    raise ValueError(f"unknown config arg {arg!r}; valid: tiny, small_scale")
  c = rl_config("tiny" if arg == "tiny" else None)
  c.objective.advantage = "grpo"
  c.objective.loss = "clip_cov"
  c.objective.aggregation = "token-mean"
  c.objective.loss_kwargs = dict(ratio=2e-4, cov_lb=1.0, cov_ub=5.0, clip_eps_low=1.0,
                                 clip_eps_high=1.0)
  if arg == "small_scale":
    c.objective.loss_kwargs.update(ratio=2e-2, clip_eps_low=0.2, clip_eps_high=0.2)
  return c
