"""Offline DPO on a fixed dataset of the SFT prior's verified samples: correct vs incorrect.

`trainer="preference"`, `method="dpo"` (explore_rl/training/preference_trainer.py): each
step a mini-batch of 32 (prompt, chosen, rejected) pairs of `preference.data`, one update on
−log σ(β[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))]), π_ref the initial
(SFT) policy (DPO, arXiv 2305.18290; docs/algorithms.md, "Preference optimisation"). Nothing
is sampled during training (held-out evaluation samples). The data: 512 prompts of the
prior's task, 8 samples each, up to 2 (correct, incorrect) pairs per prompt
(explore_rl/training/preference_data.py). `:tiny` reads configs/data/partition_pairs_tiny.jsonl
(13 pairs from 8 prompts of the experiments' tiny partition prior, `harness.task_prior`:
`python -m explore_rl.training.preference_data --num_prompts 8
--prior results/_shared/sft/partition-d0.5-tiny-600-seed0
--out configs/data/partition_pairs_tiny.jsonl`).

Command:  make preference-data     (after `make demo`, which trains runs/demo/sft)
          explore-rl train --config configs/dpo.py --workdir runs/dpo
Hardware: 2 CPU cores. Runtime: not measured at this scale; an offline step is one forward
(π_ref) and one update of 64 rows, no sampling.
Expected: not measured at this scale; experiments/preference.py compares offline DPO, HyPO,
online DPO and GRPO from the tiny-preset prior (README, "Experiments"). metrics.jsonl logs
dpo_loss, reward_accuracy and reward_margin per step.
"""
import os

import ml_collections

from explore_rl.config_files import CONFIG_DIR
from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.trainer = "preference"
  c.preference = ml_collections.ConfigDict(dict(
      method="dpo", beta=0.1, data="runs/preference/partition.jsonl", pairs_per_step=32))
  c.optim.learning_rate = 5e-5
  if arg == "tiny":
    c.preference.data = os.path.join(CONFIG_DIR, "data", "partition_pairs_tiny.jsonl")
    c.preference.pairs_per_step = 4
  return c
