"""Poly-EPO (arXiv 2604.17654) on SmolLM2-135M-Instruct: set RL with the polychromatic
objective over subsets of 4 of the 8 samples, clusters from the normalised final answers,
in the setting of configs/smollm2_grpo.py (training/smollm2_config.py).

Command:  explore-rl train --config configs/smollm2_polyepo.py --workdir runs/smollm2_polyepo
          (smoke: configs/smollm2_polyepo.py:smoke; GPU: the same command with CUDA JAX)
Hardware: 2 CPU cores (AMD EPYC, shared); any one GPU.
Runtime:  as configs/smollm2_grpo.py (the set advantages cost milliseconds).
Expected: more distinct final answers per prompt than GRPO at a similar pass@1 (not
          measured here: a 100-step run takes hours on 2 CPU cores).
"""
from explore_rl.training.smollm2_config import smollm2_config


def get_config(arg=None):
  c = smollm2_config("polyepo", arg)
  c.objective.advantage_kwargs.set_size = min(4, c.rollout.num_samples)
  return c
