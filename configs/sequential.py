"""Poly-EPO (arXiv 2604.17654) with the `sequential` dependent sampler: sample k of a prompt
is drawn with samples 1..k-1 of the same prompt in its context ("tried y_1; y_2; now
another way."); the trained policy is the plain-prompt one, corrected by truncated
importance sampling (explore_rl/sampling/dependent.py; docs/algorithms.md).

Command:  explore-rl train --config configs/sequential.py --workdir runs/sequential
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: see experiments/two_policies.py (its "sequential" arm is
          this config); sampling is N decodes in sequence per step instead of one.
Expected: `train_distinct_strategies` per prompt vs the independent sampler at equal
          sampled tokens, and held-out pass@1 / pass@8: measured in
          experiments/two_policies.py and the README's "Dependent sampling" table.
"""
from explore_rl.config_files import load_config


def get_config(arg=None):
  c = load_config("polyepo" + (f":{arg}" if arg else ""))
  c.rollout.sampler = "sequential"
  c.rollout.sampler_kwargs = dict(instruction="tried ", separator="; ",
                                  suffix="now another way. ")
  c.objective.truncated_is = True
  c.objective.is_cap = 2.0
  return c
