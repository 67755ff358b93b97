"""Poly-EPO (arXiv 2604.17654) with the `sketch` sampler (SESA, arXiv 2510.15502): the first
`sketch_len` tokens of the N responses of a prompt are drawn sequentially (each seeing
the earlier sketches), then every sketch is expanded into a full response in
parallel, starting from it; each token's loss is weighted by min(π/μ, 2), π the
plain-prompt policy, μ the sampler's context (`objective.is_correction="token_tis"`;
explore_rl/sampling/dependent.py). This does not make the update on-policy (the
prefixes stay the sampler's; docs/algorithms.md, "Importance corrections"); the
unbiased-up-to-truncation `seq_tis` keeps an effective sample size of 0.42 from the
prior at step 0 (token_tis 0.89), `seq_mis` drops 67% of the samples.

Command:  explore-rl train --config configs/sketch.py --workdir runs/sketch
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: 40-70 s per 40-step run of experiments/two_policies.py
          (tiny prior, 16 prompts x 8), 54 s at :tiny.
Expected: (measured, 3 seeds, tiny prior, 40 steps) 1.24 ± 0.26 distinct successful
          strategies per prompt in training at 76 generated tokens per prompt (independent
          2.01 at 83, sequential 0.44 at 39); held-out pass@1 0.340 ± 0.068, pass@8
          0.948 ± 0.059 (independent 0.365 / 0.932).
"""
from explore_rl.config_files import load_config


def get_config(arg=None):
  c = load_config("polyepo" + (f":{arg}" if arg else ""))
  c.rollout.sampler = "sketch"
  # partition answers are "5+5+2"-like: 3 tokens fix the first summands (the strategy's
  # start); the expansion completes the sum.
  c.rollout.sampler_kwargs = dict(sketch_len=3, instruction="tried ", separator="; ",
                                  suffix="now another way. ")
  c.objective.is_correction = "token_tis"
  return c
