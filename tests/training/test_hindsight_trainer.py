"""The hindsight sampler in the RL trainer: filtered cloning of successful proposals with the
RWR objective moves the parameters and logs the proposal metrics."""
import jax
import numpy as np

from explore_rl.config_files import load_config
from explore_rl.training.rl import RLTrainer


def test_filtered_hindsight_with_gibbs_rwr_trains_and_logs(tmp_path, toy_prior):
  c = load_config("gibbs_rwr:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = toy_prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.rollout.sampler = "hindsight"
  c.rollout.sampler_kwargs = {"proposal_frac": 0.5, "correction": "filter"}
  c.learner.mini_batches = 1
  c.optim.learning_rate = 1e-2
  c.log_clusters = False
  trainer = RLTrainer(c, str(tmp_path), progress=False)
  before = jax.tree.map(np.array, jax.device_get(trainer.state.params))
  metrics = trainer.step(0)
  assert metrics["hindsight_proposals"] == 4 * 2
  assert 0 <= metrics["hindsight_success_rate"] <= 1
  assert 0 <= metrics["hindsight_token_share"] < 1
  assert np.isfinite(metrics["loss"]) and metrics["updates_skipped"] == 0
  after = jax.device_get(trainer.state.params)
  assert max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(after),
                                                       jax.tree.leaves(before))) > 0
