"""GRPO on responses chosen by the multiset design (`rollout.sampler="design_select"`;
explore_rl/sampling/design_select.py, docs/algorithms.md "Two policies, dependent sampling, designed
multisets"): per prompt the policy draws M = 2N = 16 candidates, each described by the
embedding judge's MiniLM vector φ of its text and its mean token log-prob r̂; GRPO trains on the
N = 8 the design keeps, A = argmin_{|A|=N} max_{i≠â*} ‖φ_i − φ_{â*}‖²_{(λI + V(A))⁻¹} / Δ̂(i)².
`sampler_kwargs.selector="random"` keeps N random candidates instead (the control, same decode
cost). The kept set is not an i.i.d. sample of the policy, so the update is a biased (filtered)
policy gradient; see the sampler's docstring.

Command:  explore-rl train --config configs/design_select.py --workdir runs/design_select
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: about 2x GRPO's decode per step (M = 16 candidates per prompt,
          the selection itself is milliseconds); :tiny (2 steps) 36 s with a cold compile,
          6 s warm (loaded machine).
Expected: every step logs `design_select_estimate_kept` and `design_select_estimate_candidates`
          (mean r̂ of the kept rows and of all candidates). Not yet measured at full size: no
          pass@k or strategy numbers are claimed for this config.
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.rollout.sampler = "design_select"
  c.rollout.sampler_kwargs = ml_collections.ConfigDict(dict(
      candidates=2 * c.rollout.num_samples, selector="design", feature="judge",
      estimate="logprob",
      ridge=1.0, epsilon=0.05, include_best=False))
  c.objective.advantage = "grpo"
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  return c
