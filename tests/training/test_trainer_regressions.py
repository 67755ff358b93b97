"""Regressions found by trying the trainer as a new user would."""
import logging

import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.objectives.loss_terms import Term
from explore_rl.training.objective_builder import Objective
from explore_rl.training.rl import RLTrainer


def _toy(tmp_path, prior, **overrides):
  c = load_config("grpo:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.learner.mini_batches = 1
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return RLTrainer(c, str(tmp_path), progress=False)


def test_kl_to_the_reference_survives_donation(tmp_path, toy_prior):
  # Was: INVALID_ARGUMENT "buffer that was previously donated" at the first update,
  # because the reference params aliased the donated train state.
  trainer = _toy(tmp_path, toy_prior, **{"objective.kl_coef": 0.04})
  for step in range(2):
    metrics = trainer.step(step)
    assert np.isfinite(metrics["loss"]) and "kl_ref" in metrics


def test_plain_policy_gradient_loss_runs(tmp_path, toy_prior):
  # Was: TypeError pg_loss() got an unexpected keyword argument 'clip_eps_high'
  # (the base config carried PPO's clip range for every loss).
  assert np.isfinite(_toy(tmp_path, toy_prior, **{"objective.loss": "pg"}).step(0)["loss"])


def test_unknown_loss_hyperparameter_names_the_accepted_ones():
  cfg = load_config("grpo:tiny").objective
  cfg.loss, cfg.loss_kwargs = "pg", {"clip_eps_high": 0.28}
  with pytest.raises(ConfigError, match="takes no clip_eps_high"):
    Objective(cfg)


def test_gspo_config_has_the_papers_settings():
  spec = Objective(load_config("gspo").objective).loss_spec
  assert spec.terms[0] == Term("policy", (("loss", "gspo"),))   # gspo_loss's 3e-4 / 4e-4
  assert spec.aggregation == "seq-mean-token-mean"


def test_gspo_with_token_mean_warns(caplog):
  cfg = load_config("grpo:tiny").objective
  cfg.loss = "gspo"
  with caplog.at_level(logging.WARNING):
    Objective(cfg)
  assert "seq-mean-token-mean" in caplog.text


def test_k1_kl_term_warns_that_it_has_no_expected_gradient(caplog):
  cfg = load_config("grpo:tiny").objective
  cfg.kl_coef, cfg.kl_estimator = 0.1, "k1"
  with caplog.at_level(logging.WARNING):
    Objective(cfg)
  assert "zero expected gradient" in caplog.text


def test_importance_correction_with_a_filtered_sampler(tmp_path, toy_prior):
  # top-k renormalises the kept tokens, so the behaviour probability mu >= pi there and
  # the weight pi_old / mu is < 1 on some tokens; without a correction nothing is weighted.
  on = _toy(tmp_path / "on", toy_prior, **{"rollout.top_k": 3,
                                           "objective.is_correction": "token_tis"}).step(0)
  assert 0 < on["mismatch/is_weight_mean"] < 1 and on["mismatch/truncated_frac"] == 0.0
  assert on["mismatch/kl"] > 0 and on["mismatch/masked_frac"] == 0.0
  off = _toy(tmp_path / "off", toy_prior, **{"rollout.top_k": 3}).step(0)
  assert not any(k.startswith("mismatch/") for k in off)


def test_dynamic_sampling_samples_until_groups_are_informative(tmp_path, toy_prior):
  # An untrained model earns 0 everywhere: no group is informative, so every round up
  # to the cap is drawn; `groups_informative` describes the trained groups.
  cold = load_config("dapo:tiny")
  cold.objective.max_sampling_rounds = 3
  metrics = RLTrainer(cold, str(tmp_path / "cold"), progress=False).step(0)
  assert metrics["sampling_rounds"] == 3 and metrics["groups_informative"] == 0.0
  # From the toy prior most groups are informative: few rounds, all trained groups useful.
  warm = _toy(tmp_path / "warm", toy_prior, **{"objective.dynamic_sampling": True,
                                               "objective.oversample": 1.5,
                                               "objective.max_sampling_rounds": 8})
  metrics = warm.step(0)
  assert metrics["groups_informative"] == 1.0 and metrics["sampling_rounds"] <= 8
