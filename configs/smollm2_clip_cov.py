"""Clip-Cov (arXiv 2505.22617) on SmolLM2-135M-Instruct: the gradient of a random few
high-covariance tokens detached, in the setting of configs/smollm2_grpo.py
(training/smollm2_config.py).

Command:  explore-rl train --config configs/smollm2_clip_cov.py --workdir runs/smollm2_clip_cov
          (smoke: configs/smollm2_clip_cov.py:smoke; GPU: the same command with CUDA JAX)
Hardware: 2 CPU cores (AMD EPYC, shared); any one GPU.
Runtime:  as configs/smollm2_grpo.py (the covariance selection costs milliseconds).
Expected: entropy stays higher than under GRPO at a similar pass@1 (not measured here: a
          100-step run takes hours on 2 CPU cores).
"""
from explore_rl.training.smollm2_config import smollm2_config


def get_config(arg=None):
  return smollm2_config("clip_cov", arg)
