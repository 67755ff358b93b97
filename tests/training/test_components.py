"""Every registered component runs through the trainer: one tiny update each.

For each advantage estimator, reward shaper, policy loss, aggregation, KL estimator
and sampler (each with the others at their defaults), one RL step on the toy
`first_letter` task from a tiny SFT prior (tests/training/conftest.py) must give a
finite loss and move the parameters. A component added to a registry without an entry here fails
`test_every_registered_component_is_covered`.
"""
import jax
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.objectives import (ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS, POLICY_LOSSES,
                                   REWARD_SHAPERS)
from explore_rl.objectives.token_masks import TOKEN_MASKS
from explore_rl.sampling import SAMPLERS
from explore_rl.training.rl import RLTrainer

# name -> the config overrides that select it (with its required hyper-parameters).
CASES = {
    "advantage": {
        "grpo": {}, "dapo": {}, "dr_grpo": {}, "rloo": {}, "grpo_passk": {},
        "set_rl": {"advantage_kwargs": {"set_fn": "polychromatic", "set_size": 2}},
        "pkpo": {"advantage_kwargs": {"k": 2}},
        "passk_analytic": {"advantage_kwargs": {"k": 2}},
        "bon": {"advantage_kwargs": {"n_bon": 2, "clip": 5.0}},
        # no RL signal: the self-distillation term alone must move the parameters
        "none": {"distill": {"coef": 1.0, "teacher": "live"}},
        "gibbs_rwr": {"advantage_kwargs": {"lam": 2.0, "max_weight": 3.0}, "loss": "pg"},
    },
    "reward_shaper": {
        "dra": {}, "evol": {},
        "dapo_overlong": {"reward_shaper_kwargs": {"max_length": 6, "cache_length": 4}},
    },
    "loss": {
        "ppo": {}, "pg": {}, "gspo": {"aggregation": "seq-mean-token-mean"},
        "clip_cov": {"loss_kwargs": {"ratio": 0.2}}, "kl_cov": {"loss_kwargs": {"ratio": 0.2}},
        "cispo": {},
    },
    "token_mask": {"forking": {"token_mask": "forking", "forking_fraction": 0.5}},
    "aggregation": {
        "token-mean": {}, "seq-mean-token-sum": {}, "seq-mean-token-mean": {},
        "seq-mean-token-sum-norm": {"aggregation_kwargs": {"norm": 6.0}},
    },
    "kl_estimator": {"k1": {"kl_coef": 0.1}, "k2": {"kl_coef": 0.1}, "k3": {"kl_coef": 0.1}},
}
SAMPLER_CASES = {"independent": {}, "aggregated": {"method": "poe", "alpha": 1.0},
                 "sequential": {}, "sketch": {"sketch_len": 2},
                 "hindsight": {"proposal_frac": 0.5, "correction": "is"},
                 "design_select": {"candidates": 6},
                 "smooth_igw": {"candidates": 6, "gamma": 1.0, "h": 1.0}}
REGISTRIES = {"advantage": ADVANTAGES, "reward_shaper": REWARD_SHAPERS, "loss": POLICY_LOSSES,
              "aggregation": AGGREGATIONS, "kl_estimator": KL_ESTIMATORS,
              "token_mask": TOKEN_MASKS}


def _trainer(tmp_path, prior, objective=None, rollout=None):
  c = load_config("grpo:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.learner.mini_batches = 1
  c.optim.learning_rate = 1e-2
  c.log_clusters = False
  for key, value in (objective or {}).items():
    c.objective[key] = value
  for key, value in (rollout or {}).items():
    c.rollout[key] = value
  return RLTrainer(c, str(tmp_path), progress=False)


def _step_moves_parameters(trainer):
  # Copies: on CPU device_get may alias the buffers the donated update reuses.
  before = jax.tree.map(np.array, jax.device_get(trainer.state.params))
  metrics = trainer.step(0)
  assert metrics["reward_std"] > 0, "the toy prior gave equal rewards: no signal to test"
  after = jax.device_get(trainer.state.params)
  assert np.isfinite(metrics["loss"]) and metrics["updates_skipped"] == 0
  moved = max(float(np.abs(a - b).max()) for a, b in zip(jax.tree.leaves(after),
                                                          jax.tree.leaves(before)))
  assert moved > 0, "the update left every parameter unchanged"
  return metrics


def test_every_registered_component_is_covered():
  for kind, registry in REGISTRIES.items():
    assert set(registry.names()) == set(CASES[kind]), kind
  assert set(SAMPLERS.names()) == set(SAMPLER_CASES)


@pytest.mark.parametrize("kind,name", [(k, n) for k, cases in CASES.items() for n in cases])
def test_component_runs_one_update(kind, name, tmp_path, toy_prior):
  overrides = dict(CASES[kind][name])
  if kind in ("advantage", "reward_shaper", "loss", "aggregation", "kl_estimator"):
    overrides[kind] = name
  metrics = _step_moves_parameters(_trainer(tmp_path, toy_prior, objective=overrides))
  if kind == "kl_estimator":
    assert "kl_ref" in metrics


@pytest.mark.parametrize("name", SAMPLER_CASES)
def test_sampler_runs_one_update(name, tmp_path, toy_prior):
  _step_moves_parameters(_trainer(tmp_path, toy_prior, rollout={"sampler": name,
                                                     "sampler_kwargs": SAMPLER_CASES[name]}))
