"""EVOL-RL (arXiv 2509.15194): majority-vote pseudo-labels plus embedding novelty
(label-free: the verifier's reward is replaced by the shaped one).

Command:  explore-rl train --config configs/evol.py --workdir runs/evol
Hardware: 2 CPU cores. Runtime: ~5 minutes (embeds every response).
Expected: keeps entropy and diversity while pass@1 improves without labels.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.reward_shaper = "evol"
  c.objective.advantage = "grpo"
  return c
