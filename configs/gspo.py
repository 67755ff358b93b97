"""GSPO (Group Sequence Policy Optimization, arXiv 2507.18071): the PPO ratio is the
length-normalised sequence likelihood ratio s_i = exp(mean_t(log pi - log pi_old)),
clipped to [1 - 3e-4, 1 + 4e-4] (the paper's range), with sequence-level aggregation
(seq-mean-token-mean) and GRPO's group advantages.

Command:  explore-rl train --config configs/gspo.py --workdir runs/gspo
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: ~100 s (60 steps, 16 prompts x 8 samples).
Expected: with one PPO epoch the sequence ratio is 1 at the first mini-batch and the
clip acts only on the second mini-batch of each step (`clip_frac`); results in the
README's methods table once measured (see experiments/).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"
  c.objective.loss = "gspo"             # clip_eps_low 3e-4, clip_eps_high 4e-4, no dual clip
  c.objective.aggregation = "seq-mean-token-mean"
  return c
