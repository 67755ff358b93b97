"""HyPO: DPO on verifier-built pairs + λ·KL(π ‖ π_ref) on all online samples.

`trainer="preference"` (explore_rl/training/preference_trainer.py) with `method="hypo"`: the DPO
loss of configs/dpo.py plus λ = 0.1 times the sequence-level KL to the initial policy,
estimated on the 8 samples of every prompt, its gradient by REINFORCE with a
leave-one-out baseline (HyPO, arXiv 2406.01462; docs/algorithms.md, "Preference
optimisation"). Here the pairs are the same online samples, so HyPO differs from
online DPO only by the KL term.

Command:  explore-rl train --config configs/hypo.py --workdir runs/hypo
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 53 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured against GRPO yet; metrics.jsonl logs kl_ref (which the KL term
keeps near 0) next to the DPO metrics (the `:tiny` variant is smoke-tested).
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.trainer = "preference"
  c.preference = ml_collections.ConfigDict(dict(method="hypo", beta=0.1, kl_coef=0.1,
                                                pairs_per_prompt=2))
  c.optim.learning_rate = 5e-5
  return c
