"""DRA-GRPO (arXiv 2505.09655): rewards divided by 1 + summed cosine similarity to
the prompt's other responses (MiniLM embeddings), then GRPO.

Command:  explore-rl train --config configs/dra.py --workdir runs/dra
Hardware: 2 CPU cores. Runtime: 131 s (60 steps, MiniLM embeds every response).
Expected: (measured, one run) entropy 0.215, distinct 1.86, pass@8 0.945, pass@1 0.387
(GRPO: entropy 0.16-0.17, distinct 1.3-1.4, pass@8 0.90-0.91).
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.reward_shaper = "dra"
  c.objective.advantage = "grpo"
  return c
