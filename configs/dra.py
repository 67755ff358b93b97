"""DRA-GRPO (arXiv 2505.09655): rewards divided by 1 + summed cosine similarity to
the prompt's other responses (MiniLM embeddings), then GRPO.

Command:  explore-rl train --config configs/dra.py --workdir runs/dra
Hardware: 2 CPU cores. Runtime: ~5 minutes (embeds every response).
Expected: more distinct successful strategies than GRPO at similar pass@1.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.reward_shaper = "dra"
  c.objective.advantage = "grpo"
  return c
