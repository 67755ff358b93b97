"""A researcher's own advantage, loss term, sampler and task, defined and registered in
one config file (tests/training/my_method.py), train with no edit inside explore_rl/:
the recipe of docs/design.md, "Adding a component", followed literally."""
import os

import numpy as np

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.objectives import ADVANTAGES, LOSS_TERMS
from explore_rl.sampling import SAMPLERS
from explore_rl.tasks import TASKS
from explore_rl.training.trainers import TRAINERS
from explore_rl.training.validate import is_group_relative

MY_METHOD = os.path.join(os.path.dirname(__file__), "my_method.py")


def test_a_config_file_registers_and_trains_its_own_components(tmp_path):
  load_config(os.path.relpath(MY_METHOD))   # the CLI reads a config file twice, by the
  config = load_config(MY_METHOD)           # path it was given and by another
  assert "centred" in ADVANTAGES and "logprob_l2" in LOSS_TERMS
  assert "my_sampler" in SAMPLERS and "echo_letter" in TASKS
  assert is_group_relative("centred")       # its metadata is what validation reads
  TRAINERS.get(config.trainer)(config, str(tmp_path), progress=False)
  (row,) = read_metrics(str(tmp_path))
  assert row["my_sampler_calls"] == 1                              # the sampler drew
  assert row["logprob_sq"] > 0 and np.isfinite(row["loss"])        # the loss term ran
  assert 0 <= row["reward_mean"] <= 1 and row["advantage_abs_mean"] >= 0  # task, advantage
