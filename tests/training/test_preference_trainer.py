"""Offline preference data and the DPO / HyPO / online DPO trainer.

- the data: an SFT prior's verified samples as (correct, incorrect) pairs of one prompt,
  the same file for the same seed, the TFDS form equal to the JSONL;
- offline DPO samples nothing in training and trains on the dataset's pairs, a whole epoch
  of them before any repeats; HyPO trains on the same pairs and samples online for its KL
  term only; online DPO pairs its own samples; each first loss is log 2 (π = π_ref);
- bad settings and bad data are one clear error before the run directory is written.
"""
from __future__ import annotations

import math
import os
import types

import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.tasks import get_task
from explore_rl.tasks.jsonl import JsonlFormatError
from explore_rl.tasks.preference_pairs import PreferencePair, load_pairs, write_pairs
from explore_rl.training.preference_data import main, make_preference_data
from explore_rl.training.preference_trainer import (
    PreferenceTrainer, build_pairs, encode_pairs, offline_pairs, preference_settings)


@pytest.fixture(scope="module")
def toy_pairs(toy_prior, tmp_path_factory):
  """The toy prior's pairs (first_letter: a response is correct iff it starts with 'a')."""
  path = str(tmp_path_factory.mktemp("pairs") / "pairs.jsonl")
  stats = make_preference_data(toy_prior, path, num_prompts=16, num_samples=8, seed=3)
  return path, stats


def _config(prior, method, data=None, **overrides):
  c = load_config(f"{method}:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.optim.learning_rate = 1e-2
  c.log_clusters = False
  if data is not None:
    c.preference.data = data
  for key, value in overrides.items():
    node, *path = [c, *key.split(".")]
    for part in path[:-1]:
      node = node[part]
    node[path[-1]] = value
  return c


def test_pairs_are_the_priors_verified_samples_and_deterministic(toy_prior, toy_pairs, tmp_path):
  path, stats = toy_pairs
  pairs = load_pairs(path)
  assert len(pairs) == stats["pairs"] > 0 and stats["prompts"] == 16
  assert stats["prompts_with_pairs"] <= len(pairs) <= 2 * stats["prompts_with_pairs"]
  task = get_task("first_letter")
  problem = task.sample(np.random.default_rng(0))
  for pair in pairs:
    assert pair.prompt.startswith("say ") and pair.prompt.endswith(":")
    assert task.score(problem, pair.chosen).reward >= 1.0       # starts with 'a'
    assert task.score(problem, pair.rejected).reward < 1.0
  again = tmp_path / "again.jsonl"
  make_preference_data(toy_prior, str(again), num_prompts=16, num_samples=8, seed=3,
                       tfds_dir=str(tmp_path / "tfds"))
  assert again.read_bytes() == open(path, "rb").read()
  other = tmp_path / "other.jsonl"
  make_preference_data(toy_prior, str(other), num_prompts=16, num_samples=8, seed=4)
  assert other.read_bytes() != again.read_bytes()


def test_command_line_writes_the_pairs_or_says_to_train_the_prior(toy_prior, toy_pairs,
                                                                 tmp_path, capsys):
  out = tmp_path / "cli.jsonl"
  assert main(["--prior", toy_prior, "--out", str(out), "--num_prompts", "16",
               "--seed", "3"]) == 0
  assert out.read_bytes() == open(toy_pairs[0], "rb").read()
  assert f"wrote {toy_pairs[1]['pairs']} pairs" in capsys.readouterr().out
  with pytest.raises(SystemExit) as exit_:
    main(["--prior", str(tmp_path / "none"), "--out", str(out)])
  assert exit_.value.code == 2 and "train the prior first" in capsys.readouterr().err


def test_tfds_form_of_the_data(toy_prior, toy_pairs, tmp_path):
  pytest.importorskip("tensorflow_datasets")
  stats = make_preference_data(toy_prior, str(tmp_path / "p.jsonl"), num_prompts=16,
                               num_samples=8, seed=3, tfds_dir=str(tmp_path / "tfds"))
  assert stats["tfds_path"].endswith(os.path.join("explore_rl_preference_pairs",
                                                  "first_letter", "1.0.0"))
  assert load_pairs(stats["tfds_path"]) == load_pairs(toy_pairs[0])


def test_offline_dpo_samples_nothing_and_trains_on_the_dataset(tmp_path, toy_prior, toy_pairs):
  c = _config(toy_prior, "dpo", toy_pairs[0], **{"preference.pairs_per_step": 3})
  trainer = PreferenceTrainer(c, str(tmp_path), progress=False)
  metrics = trainer.step(0)
  assert metrics["pairs"] == 3
  assert metrics["dpo_loss"] == pytest.approx(math.log(2.0), abs=1e-5)   # π = π_ref
  assert metrics["reward_accuracy"] == 0.0 and metrics["updates_skipped"] == 0
  metrics = trainer.step(1)
  assert metrics["dpo_loss"] < math.log(2.0) and metrics["reward_accuracy"] > 0
  assert "reward_mean" not in metrics and "kl_ref" not in metrics
  assert metrics["flops_sample"] == 0 and metrics["flops_train"] > 0


def test_offline_mini_batches_are_epochs_of_the_dataset():
  tok = CharTokenizer()
  pairs = [PreferencePair(f"p{i}", f"c{i}", f"r{i}") for i in range(7)]
  run = types.SimpleNamespace(
      pairs=encode_pairs(pairs, tok, prompt_len=4, response_len=4, source="toy"),
      pref={"pairs_per_step": 3}, config=types.SimpleNamespace(seed=0))
  seen = []
  for step in range(7):                    # 21 positions: three epochs of 7 pairs
    batch, chosen, rejected, valid = offline_pairs(run, step)
    assert chosen.tolist() == [0, 1, 2] and rejected.tolist() == [3, 4, 5] and valid.all()
    texts = [tok.decode(t) for t in batch.response_tokens]
    prompts = [tok.decode(t[v][1:]) for t, v in zip(batch.prompt_tokens, batch.prompt_valid)]
    assert [p[1:] for p in prompts[:3]] == [t[1:] for t in texts[:3]] == \
        [t[1:] for t in texts[3:]]              # row k and k + 3 are one pair's two sides
    assert all(t.startswith("c") for t in texts[:3]) and all(t.startswith("r") for t in texts[3:])
    seen += [int(t[1:]) for t in texts[:3]]
  for epoch in range(3):
    assert sorted(seen[7 * epoch:7 * epoch + 7]) == list(range(7))
  assert seen[:7] != seen[7:14]             # a new permutation each epoch
  again, *_ = offline_pairs(run, 4)         # a function of the step: resumable
  np.testing.assert_array_equal(again.response_tokens, offline_pairs(run, 4)[0].response_tokens)


def test_hypo_trains_on_the_offline_pairs_and_samples_for_its_kl(tmp_path, toy_prior,
                                                                 toy_pairs):
  c = _config(toy_prior, "hypo", toy_pairs[0], **{"preference.pairs_per_step": 3})
  trainer = PreferenceTrainer(c, str(tmp_path), progress=False)
  metrics = trainer.step(0)
  assert metrics["pairs"] == 3                       # the dataset's, not the rollout's
  assert metrics["dpo_loss"] == pytest.approx(math.log(2.0), abs=1e-5)
  assert metrics["kl_ref"] == pytest.approx(0.0, abs=1e-5)
  assert metrics["loss"] == pytest.approx(math.log(2.0), abs=1e-5)
  assert "reward_mean" in metrics and metrics["flops_sample"] > 0      # online samples
  metrics = trainer.step(1)
  assert metrics["kl_ref"] != 0.0 and metrics["updates_skipped"] == 0


def test_online_dpo_pairs_its_own_samples(tmp_path, toy_prior):
  c = _config(toy_prior, "online_dpo")
  trainer = PreferenceTrainer(c, str(tmp_path), progress=False)
  metrics = trainer.step(0)
  assert 0 < metrics["pairs"] <= 4 * 2
  assert metrics["dpo_loss"] == pytest.approx(math.log(2.0), abs=1e-5)
  assert "kl_ref" not in metrics and "reward_mean" in metrics
  metrics = trainer.step(1)
  assert metrics["dpo_loss"] < math.log(2.0) + 0.05 and metrics["updates_skipped"] == 0


def test_dpo_pairs_from_a_toy_group():
  correct = np.array([[1, 0, 1, 0], [1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]], bool)
  chosen, rejected, valid = build_pairs(correct, 2, np.random.default_rng(0))
  assert valid.tolist() == [True, True, False, False, True, False, False, False]
  assert sorted(chosen[:2].tolist()) == [0, 2] and sorted(rejected[:2].tolist()) == [1, 3]
  assert chosen[4] == 9 and rejected[4] in (8, 10, 11)
  flat = correct.reshape(-1)
  assert flat[chosen[valid]].all() and not flat[rejected[valid]].any()
  assert (chosen[valid] // 4 == rejected[valid] // 4).all()   # the same prompt


@pytest.mark.parametrize("method,block,match", [
    ("dpo", {"data": ""}, "offline pairs: set preference.data"),
    ("hypo", {"data": ""}, "offline pairs: set preference.data"),
    ("online_dpo", {"data": "x.jsonl"}, "does not read preference.data"),
    ("dpo", {"kl_coef": 0.1}, "does not read preference.kl_coef"),
    ("dpo", {"method": "ipo"}, "valid: dpo, hypo, online_dpo"),
    ("dpo", {"pairs_per_step": 0}, "pairs_per_step >= 1"),
    ("dpo", {"epochs": 2}, "takes no epochs"),
])
def test_bad_settings_are_one_config_error(method, block, match):
  c = load_config(f"{method}:tiny")
  for key, value in block.items():
    c.preference[key] = value
  with pytest.raises(ConfigError, match=match):
    preference_settings(c)


def test_bad_data_fails_before_the_run_directory_is_written(tmp_path, toy_prior):
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"prompt": "say 1:", "chosen": "a"}\n')
  workdir = tmp_path / "run"
  with pytest.raises(JsonlFormatError, match=f"{bad}:1: no 'rejected'"):
    PreferenceTrainer(_config(toy_prior, "dpo", str(bad)), str(workdir), progress=False)
  assert not workdir.exists() or not os.listdir(workdir)
  long = tmp_path / "long.jsonl"
  write_pairs(long, [PreferencePair("say 1:", "a" * 7, "b")])     # max_response_len 6
  with pytest.raises(ConfigError, match=f"{long}: 1 response.*max_response_len=6"):
    PreferenceTrainer(_config(toy_prior, "dpo", str(long)), str(tmp_path / "r2"),
                      progress=False)
  wide = tmp_path / "wide.jsonl"
  write_pairs(wide, [PreferencePair("say " + "9" * 20 + ":", "a", "b")])
  with pytest.raises(ConfigError, match=f"{wide}: .*max_prompt_len=12"):
    PreferenceTrainer(_config(toy_prior, "dpo", str(wide)), str(tmp_path / "r3"),
                      progress=False)
