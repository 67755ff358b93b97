"""Explore vs exploit (training/two_policy.py): importance corrections, the reduction to the
single-policy trainer, exact resume, config errors.

On the toy `first_letter` task from the tiny SFT prior (tests/training/conftest.py).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.metrics_log import read_metrics
from explore_rl.models.logprobs import response_logprobs
from explore_rl.models.tokenizer import encode_prompts
from explore_rl.training.dynamic_sampling import sample_groups
from explore_rl.training.group_context import group_context
from explore_rl.training.rl import RLTrainer
from explore_rl.training.two_policy import TwoPolicyTrainer, train_two_policy

TIMING = ("time_", "step_time", "tokens_per_s")


def _config(prior, **explore):
  c = load_config("explore_exploit:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.learner.mini_batches = 1
  c.optim.learning_rate = c.explore.optim.learning_rate = 1e-2
  c.log_clusters = False
  c.eval.num_prompts, c.eval.num_samples = 4, 4
  c.explore.objective.advantage_kwargs.set_size = 2
  c.explore.objective.aggregation_kwargs.norm = 6
  for key, value in explore.items():
    c.explore[key] = value
  return c


def _params(trainer):
  return [np.array(x) for x in jax.tree.leaves(jax.device_get(trainer.state.params))]


@pytest.mark.parametrize("correction", ["token_tis", "seq_mis"])
def test_exploit_weights_are_exploit_over_explore(tmp_path, toy_prior, correction):
  # One parameter set, explored with an instruction at a higher temperature.
  c = _config(toy_prior, params="shared", instruction="explore: ", temperature=1.6, frozen=True)
  c.objective.is_correction, c.objective.is_cap = correction, 1.2
  c.objective.is_lower, c.objective.is_upper = 0.3, 3.0
  trainer = TwoPolicyTrainer(c, str(tmp_path), progress=False)
  scored, _ = sample_groups(trainer, jax.random.key(0))
  # Both log-probs recomputed from scratch: exploit on the plain prompt at T = 1,
  # explore on "explore: " + prompt at T = 1.6.
  params, graphdef, tok = trainer.state.params, trainer.policy.graphdef, trainer.policy.tokenizer
  n = c.rollout.num_samples
  host = scored.host

  def logp(prefix, length, temperature):
    tokens, valid = encode_prompts(tok, [prefix + p.prompt for p in scored.problems], length)
    lp, _ = response_logprobs(graphdef, params, jnp.asarray(np.repeat(tokens, n, 0)),
                              jnp.asarray(np.repeat(valid, n, 0)), jnp.asarray(host.tokens),
                              jnp.asarray(host.mask), temperature=temperature)
    return np.asarray(lp)

  exploit = logp("", c.max_prompt_len, 1.0)
  explore = logp("explore: ", c.max_prompt_len + 9, 1.6)
  mask = host.mask
  raw = np.where(mask, np.exp(exploit - explore), 1.0)
  seq = raw.prod(axis=1)
  if correction == "token_tis":          # per token, truncated at 1.2
    assert (raw[mask] > 1.2).any() and (raw[mask] < 1.0).any(), "the test needs both kinds"
    w = np.minimum(raw, 1.2)[mask]
  else:                                  # per sequence, dropped outside [0.3, 3]
    kept = (seq >= 0.3) & (seq <= 3.0)
    assert kept.any() and not kept.all(), "the test needs kept and dropped sequences"
    w = np.where(kept, seq, 0.0)
  # The exploit update logs the correction's diagnostics over the whole rollout.
  context, _ = group_context(trainer, scored, trainer.parts.objective.needs, jax.random.key(1))
  _, adv = map(np.asarray, trainer.parts.objective(context))
  metrics = trainer.update(trainer, scored, adv, 0, jax.random.key(2))
  ratio = np.exp(exploit - explore)[mask]
  assert metrics["mismatch/kl"] == pytest.approx(np.mean(ratio - 1 - np.log(ratio)), rel=2e-3)
  assert metrics["mismatch/is_weight_mean"] == pytest.approx(w.mean(), rel=2e-3)
  assert metrics["mismatch/is_weight_max"] == pytest.approx(w.max(), rel=2e-3)
  assert metrics["mismatch/ess"] == pytest.approx(w.sum() ** 2 / (w.size * (w ** 2).sum()),
                                                  rel=2e-3)
  assert metrics["mismatch/masked_frac"] == pytest.approx(np.mean(w == 0), abs=1e-6)


def test_explore_equal_to_exploit_is_the_single_policy_trainer(tmp_path, toy_prior):
  c = _config(toy_prior, params="shared", instruction="", temperature=1.0, frozen=True)
  two = TwoPolicyTrainer(c, str(tmp_path / "two"), progress=False)
  single_config = load_config("grpo:tiny")
  single_config.update({k: c[k] for k in ("task", "max_prompt_len", "max_response_len",
                                          "init_from", "rollout", "learner", "optim",
                                          "log_clusters", "eval", "objective")})
  single = RLTrainer(single_config, str(tmp_path / "single"), progress=False)
  for step in range(2):
    m_two, m_single = two.step(step), single.step(step)
    assert m_two["loss"] == m_single["loss"]
  assert m_single["reward_std"] > 0 and m_single["update_norm"] > 0
  for a, b in zip(_params(two), _params(single)):
    np.testing.assert_array_equal(a, b)


def _strip(rows):
  return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def test_resumed_two_policy_run_equals_an_uninterrupted_one(tmp_path, toy_prior):
  def config(total):
    c = _config(toy_prior, params="separate", frozen=False)
    c.total_steps, c.eval_every, c.checkpoint_every = total, 2, 2
    return c

  train_two_policy(config(4), str(tmp_path / "straight"), progress=False)
  train_two_policy(config(2), str(tmp_path / "resumed"), progress=False)  # "interrupted"
  train_two_policy(config(4), str(tmp_path / "resumed"), progress=False)  # the same command
  straight = _strip(read_metrics(str(tmp_path / "straight")))
  resumed = _strip(read_metrics(str(tmp_path / "resumed")))
  assert [r["step"] for r in resumed] == [1, 2, 3, 4]
  assert straight[-1]["explore/update_norm"] > 0 and straight[-1]["update_norm"] > 0
  assert "explore/pass@4" in straight[-1] and "pass@1" in straight[-1]
  for a, b in zip(straight, resumed):
    assert a.keys() == b.keys()
    for k in a:
      assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), (a["step"], k)
  # Both policies and optimizers were restored: the final states are equal.
  states = []
  for name in ("straight", "resumed"):
    trainer = TwoPolicyTrainer(config(4), str(tmp_path / name), progress=False)
    states.append(jax.device_get((trainer.state, trainer.explore_state)))
    trainer.ckpt.close()
    trainer.explore_ckpt.close()
    trainer.run_dir.close()
  for a, b in zip(jax.tree.leaves(states[0]), jax.tree.leaves(states[1])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("key, value, match", [
    ("explore.params", "both", "explore.params"),
    ("explore.temperature", 0.0, "explore.temperature"),
    ("objective.is_correction", "none", "is_correction"),
    ("explore.objective.advantage", "nope", "unknown advantage 'nope'"),
])
def test_bad_explore_settings_fail_before_any_work(tmp_path, key, value, match):
  c = load_config("explore_exploit:tiny", {key: value})
  with pytest.raises(ConfigError, match=match):
    TwoPolicyTrainer(c, str(tmp_path / "run"), progress=False)
  assert not (tmp_path / "run").exists()
