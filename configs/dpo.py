"""Online DPO on verifier-built pairs: correct vs incorrect responses of the same prompt.

`trainer="preference"` (explore_rl/training/preference_trainer.py): each step samples 8 responses
per prompt, pairs up to 2 correct with 2 incorrect ones of the same prompt, and takes one
full-batch step on −log σ(β[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))]),
π_ref the initial (SFT) policy (DPO, arXiv 2305.18290; docs/algorithms.md,
"Preference optimisation").

Command:  explore-rl train --config configs/dpo.py --workdir runs/dpo
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 96 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured against GRPO yet; metrics.jsonl logs pairs, reward_accuracy and
reward_margin per step (the `:tiny` variant is smoke-tested).
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.trainer = "preference"
  c.preference = ml_collections.ConfigDict(dict(method="dpo", beta=0.1, kl_coef=0.0,
                                                pairs_per_prompt=2))
  c.optim.learning_rate = 5e-5
  return c
