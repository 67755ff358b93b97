"""HyPO: offline DPO on the SFT prior's verified pairs + λ·KL(π ‖ π_ref) on online samples.

`trainer="preference"`, `method="hypo"` (explore_rl/training/preference_trainer.py): the
offline DPO mini-batch of configs/dpo.py (32 pairs of `preference.data`) plus λ = 0.1 times
the sequence-level KL to the initial policy, estimated on 8 responses the current policy
samples for each of 16 prompts of the task's stream, its gradient by REINFORCE with a
leave-one-out baseline (HyPO, arXiv 2406.01462; docs/algorithms.md, "Preference
optimisation"). The online samples are unlabeled for the loss: the verifier scores them for
the logged train_pass@1 only.

Command:  make preference-data     (after `make demo`, which trains runs/demo/sft)
          explore-rl train --config configs/hypo.py --workdir runs/hypo
Hardware: 2 CPU cores. Runtime: not measured at this scale; a step samples 16 x 8 responses
as GRPO does, then one update of 64 + 128 rows.
Expected: not measured at this scale; experiments/preference.py compares it with offline
DPO, online DPO and GRPO (README, "Experiments"). metrics.jsonl logs kl_ref next to the DPO
metrics.
"""
import os

import ml_collections

from explore_rl.config_files import CONFIG_DIR
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.trainer = "preference"
  c.preference = ml_collections.ConfigDict(dict(
      method="hypo", beta=0.1, kl_coef=0.1, data="runs/preference/partition.jsonl",
      pairs_per_step=32))
  c.optim.learning_rate = 5e-5
  if arg == "tiny":
    c.preference.data = os.path.join(CONFIG_DIR, "data", "partition_pairs_tiny.jsonl")
    c.preference.pairs_per_step = 4   # configs/dpo.py says where the file comes from
  return c
