"""GRPO (DeepSeekMath, arXiv 2402.03300) on the partition task, from the SFT prior.

Command:  explore-rl train --config configs/grpo.py --workdir runs/grpo
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: ~3 minutes (60 steps, 16 prompts x 8 samples).
Expected: pass@1 rises above the SFT prior while distinct successful strategies
per prompt and entropy fall (diversity collapse); see runs/demo/report.md.
"""
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"           # (r - mean) / (std + 1e-6), ddof 1 (verl)
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  return c
