"""Poly-EPO (arXiv 2604.17654) with the `sequential` dependent sampler: sample k of a prompt
is drawn with samples 1..k-1 of the same prompt in its context ("tried y_1; y_2; now
another way."); the trained policy is the plain-prompt one, each token's loss weighted
by min(π/μ, 2) (`objective.is_correction="token_tis"`; explore_rl/sampling/dependent.py).
That keeps the sampler's prefixes, so it is not the plain policy's gradient
(docs/algorithms.md, "Importance corrections"); a sequence weight would be, but from the
prior at step 0 (per-token mismatch KL 1.9) only sample 1 of each group, drawn in the
plain context, keeps weight: `seq_tis` ESS 0.13, `seq_mis` drops 88%.

Command:  explore-rl train --config configs/sequential.py --workdir runs/sequential
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: 120-180 s per 40-step run of experiments/two_policies.py
          (tiny prior, 16 prompts x 8), 41 s at :tiny; sampling is N decodes in sequence.
Expected: (measured, 3 seeds, tiny prior, 40 steps) 0.44 ± 0.04 distinct successful
          strategies per prompt in training at 39 generated tokens per prompt (independent
          sampler: 2.01 at 83): the plain-prompt SFT prior cannot read a context of earlier
          samples; held-out pass@1 0.322 ± 0.035, pass@8 0.906 ± 0.039 (independent
          0.365 / 0.932).
"""
from explore_rl.config_files import load_config


def get_config(arg=None):
  c = load_config("polyepo" + (f":{arg}" if arg else ""))
  c.rollout.sampler = "sequential"
  c.rollout.sampler_kwargs = dict(instruction="tried ", separator="; ",
                                  suffix="now another way. ")
  c.objective.is_correction = "token_tis"
  return c
