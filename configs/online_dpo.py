"""Online DPO on verifier-built pairs: correct vs incorrect responses of each step's samples.

`trainer="preference"`, `method="online_dpo"` (explore_rl/training/preference_trainer.py):
each step samples 8 responses for each of 16 prompts from the current policy, pairs up to 2
correct with 2 incorrect ones of the same prompt, and takes one full-batch step on
−log σ(β[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))]), π_ref the initial
(SFT) policy (DPO, arXiv 2305.18290, on on-policy pairs; docs/algorithms.md, "Preference
optimisation"). The on-policy counterpart of configs/dpo.py, which trains on a fixed dataset.

Command:  explore-rl train --config configs/online_dpo.py --workdir runs/online_dpo
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 96 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured at this scale; experiments/preference.py compares it with offline
DPO, HyPO and GRPO (README, "Experiments"). metrics.jsonl logs pairs, reward_accuracy and
reward_margin per step.
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.trainer = "preference"
  c.preference = ml_collections.ConfigDict(dict(method="online_dpo", beta=0.1,
                                                pairs_per_prompt=2))
  c.optim.learning_rate = 5e-5
  return c
