"""EVOL-RL (arXiv 2509.15194): majority-vote pseudo-labels plus embedding novelty
(label-free: the verifier's reward is replaced by the shaped one).

Command:  explore-rl train --config configs/evol.py --workdir runs/evol
Hardware: 2 CPU cores. Runtime: 138 s (60 steps, MiniLM embeds every response).
Expected: (measured, one run) label-free training fails on `partition`: the pseudo-label
is the majority final sum, which cannot tell allowed parts from disallowed ones, and
held-out pass@1 falls 0.40 -> 0.24 (pass@8 0.96 -> 0.53). Use it where majority answers
carry the signal (jsonl, arithmetic).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.reward_shaper = "evol"
  c.objective.advantage = "grpo"
  return c
