"""GRPO on SmoothIGW-played responses (`rollout.sampler="smooth_igw"`;
explore_rl/sampling/design_select.py, docs/algorithms.md "SmoothIGW"; Zhu & Mineiro 2022, arXiv
2207.05849): per prompt the policy draws M = 2N = 16 candidates scored by their mean token
log-prob r̂; each of the N = 8 trained slots draws a candidate a uniformly and keeps it with
probability 1 / (1 + hγ (r̂(â) − r̂(a))), else plays the most confident candidate â. With
γ = 10, h = 1 a candidate 0.1 nats/token less confident than â is kept half the time. The
played set is not an i.i.d. sample of the policy (rows may repeat â); see the sampler's docstring.

Command:  explore-rl train --config configs/smooth_igw.py --workdir runs/smooth_igw
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: about 2x GRPO's decode per step (M = 16 candidates per prompt);
          :tiny (2 steps) 36 s with a cold compile, 6 s warm (loaded machine).
Expected: every step logs `smooth_igw_estimate_kept` and `smooth_igw_estimate_candidates`
          (kept above candidates: the draws lean to confident responses). Not yet measured at
          full size: no pass@k or strategy numbers are claimed for this config.
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.rollout.sampler = "smooth_igw"
  c.rollout.sampler_kwargs = ml_collections.ConfigDict(dict(
      candidates=2 * c.rollout.num_samples, gamma=10.0, h=1.0, estimate="logprob"))
  c.objective.advantage = "grpo"
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  return c
