"""The base model's pass@k map (eval/base_map.py, experiments/base_model.py): the numbers
of a tiny model against a brute-force count, the selection rule, and the run in parts
(a measured task is never measured again; the table is rebuilt from the files)."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import pathlib
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from explore_rl.eval import base_map
from explore_rl.tasks.base import Problem, Task


class Coin(Task):
  """A response is correct when its first character is one of 'abcdefghijklm': a random
  tiny model solves some samples of each prompt, not all."""
  name = "coin_test"

  def sample(self, rng, difficulty=None):
    return Problem(prompt=f"flip {int(rng.integers(10))}:", answer="a", solution="a",
                   difficulty=0.0, meta={}, family=self.name)

  def correct_responses(self, problem, rng, num):
    return ["a"]

  def mistake(self, problem, rng, response):
    return "z"

  def parse(self, problem, response):
    return response[:1] or None

  def check(self, problem, parsed):
    return parsed in "abcdefghijklm"

  def parsed_answer(self, problem, parsed):
    return parsed

  def parsed_signature(self, problem, parsed):
    return parsed


@dataclasses.dataclass(frozen=True)
class CoinSpec(base_map.TaskSpec):
  def build(self):
    return Coin()


@pytest.fixture(scope="module")
def tiny_policy():
  """The tiny preset, its output head rewired so that responses end early: the final norm
  keeps only hidden unit 0, whose sign then decides between EOS (logit +20|h_0|) and a
  uniform draw of the other characters (EOS at −20|h_0|)."""
  import jax.numpy as jnp
  from explore_rl.models import sharding
  from explore_rl.training.policy_loader import fresh_policy
  c = ml_collections.ConfigDict(dict(model=ml_collections.ConfigDict(dict(preset="tiny")),
                                     model_overrides=ml_collections.ConfigDict(), seed=3))
  policy = fresh_policy(c, sharding.make_mesh({"num_devices": 1}))
  d, vocab = policy.params["lm_head"]["kernel"].shape
  params = {**policy.params, "norm": {"scale": jnp.zeros(d).at[0].set(1.0)},
            "lm_head": {"kernel": jnp.zeros((d, vocab)).at[0, policy.tokenizer.eos_id].set(20.0)}}
  return dataclasses.replace(policy, params=params)


def brute_force_pass_at_k(num_correct, n: int, k: int) -> float:
  """The mean over prompts of the share of k-subsets of the n samples holding a correct
  one, by enumerating the subsets."""
  per_prompt = []
  for c in num_correct:
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    per_prompt.append(sum(any(samples[i] for i in s) for s in subsets) / len(subsets))
  return float(np.mean(per_prompt))


def test_a_tiny_models_pass_at_k_matches_the_brute_force_count(tiny_policy):
  spec = CoinSpec("coin", "coin_test", 0.0, "test")
  entry = base_map.measure(tiny_policy, spec, num_prompts=6, num_samples=8,
                           max_new_tokens=4, chunk=4)
  counts = entry["eval_num_correct"]
  assert len(counts) == 6 and 0 < sum(counts) < 6 * 8   # some samples right, not all
  for k in (1, 2, 4, 8):
    assert entry[f"pass@{k}"] == pytest.approx(brute_force_pass_at_k(counts, 8, k), abs=1e-12)
  # A correct sample's first character is its strategy: at most 13 per prompt.
  assert 0 < entry["distinct_correct_strategies"] <= 8
  assert entry["eval_response_len"] <= 4 and entry["prompt_len"] % 16 == 0
  assert entry["wall_s"] > 0


def _done(key: str, kind: str, pass1: float, pass64: float) -> dict:
  return {"spec": {"key": key, "kind": kind}, "metrics": {"pass@1": pass1, "pass@64": pass64}}


def test_the_selection_rule_picks_the_largest_headroom_then_another_kind():
  done = {"a": _done("a", "arithmetic", 0.30, 0.90),     # headroom 0.60
          "b": _done("b", "arithmetic", 0.10, 0.80),     # 0.70, the first
          "c": _done("c", "string", 0.20, 0.50),         # 0.30, the best other kind
          "d": _done("d", "string", 0.04, 0.90),         # pass@1 below 0.05
          "e": _done("e", "search", 0.70, 0.99),         # pass@1 above 0.6
          "f": _done("f", "sorting", 0.30, 0.40)}        # headroom 0.10 < 0.15
  assert base_map.choose(done) == ["b", "c"]
  assert base_map.choose({k: done[k] for k in "ab"}) == ["b"]
  assert base_map.choose({k: done[k] for k in "def"}) == []


def test_every_candidate_builds_and_its_key_is_unique():
  assert len(base_map.CANDIDATES) >= 12
  assert len(base_map.BY_KEY) == len(base_map.CANDIDATES)
  kinds = {s.kind for s in base_map.CANDIDATES}
  assert len(kinds) >= 4
  with pytest.raises(ValueError, match="unknown task"):
    base_map.get_spec("nope")


def test_the_map_runs_in_parts_and_never_measures_a_task_twice(load_experiment, monkeypatch,
                                                               tmp_path):
  """Measured tasks are skipped (no model is even loaded); the table is rebuilt from every
  file, with the size of each and the chosen tasks."""
  bm = load_experiment("base_model")
  calls = []

  def fake_measure(policy, spec, **kw):
    calls.append(spec.key)
    pass1 = {"arithmetic-d0": 0.125, "rg-spell_backward-d0": 0.3, "rg-chain_sum-d0": 0.01}[
        spec.key]
    return {"pass@1": pass1, "pass@1_stderr": 0.01, "pass@8": 0.5, "pass@64": pass1 + 0.4,
            "distinct_correct_strategies": 1.5, "distinct_correct_answers": 1.0,
            "eval_entropy": 0.4, "eval_response_len": 90.0, "eval_truncated_frac": 0.1,
            "eval_malformed_frac": 0.2,
            "prompt_len": 96, "wall_s": 1.0}
  monkeypatch.setattr(bm.base_map, "measure", fake_measure)
  monkeypatch.setattr("explore_rl.training.policy_loader.load_initial_policy",
                      lambda name: object())
  out = tmp_path / "bm"
  assert bm.main(["--tasks", "arithmetic-d0", "--out", str(out), "--num_samples", "64"]) == 0
  first = (out / "tasks" / "arithmetic-d0.json").read_text()
  assert bm.main(["--tasks", "arithmetic-d0,rg-spell_backward-d0", "--out", str(out),
                  "--num_prompts", "16"]) == 0
  assert calls == ["arithmetic-d0", "rg-spell_backward-d0"]
  assert (out / "tasks" / "arithmetic-d0.json").read_text() == first
  # A larger size measures a task again and replaces its file; the same size does not.
  assert bm.main(["--tasks", "rg-spell_backward-d0", "--out", str(out)]) == 0
  assert bm.main(["--tasks", "rg-spell_backward-d0", "--out", str(out)]) == 0
  assert calls == ["arithmetic-d0", "rg-spell_backward-d0", "rg-spell_backward-d0"]
  assert bm.main(["--tasks", "rg-spell_backward-d0", "--out", str(out),
                  "--num_prompts", "16"]) == 0
  assert len(calls) == 3
  assert bm.main(["--tasks", "rg-chain_sum-d0", "--out", str(out), "--num_samples", "16"]) == 0
  saved = json.loads(first)
  assert saved["num_samples"] == 64 and saved["spec"]["task"] == "arithmetic"
  assert "--tasks arithmetic-d0" in saved["command"]
  with open(out / "table.csv") as f:
    rows = {r["task"]: r for r in csv.DictReader(f)}
  assert rows["arithmetic-d0"]["size"] == "64 x 64 x 128"
  assert rows["rg-spell_backward-d0"]["size"] == "64 x 64 x 128"
  assert rows["rg-chain_sum-d0"]["size"] == "64 x 16 x 128"
  assert rows["rg-chain_sum-d0"]["pass@64"] == "0.410" and rows["rg-chain_sum-d0"]["eligible"] == ""
  assert rows["arithmetic-d0"]["headroom"] == "0.400"
  table = (out / "table.md").read_text()
  # Both eligible; headroom ties at 0.4, so the key order decides; the kinds differ.
  assert "Chosen: arithmetic-d0, rg-spell_backward-d0." in table
  assert "Below the full size (64 prompts x 64 samples): rg-chain_sum-d0." in table
  # A task measured under another spec (here: before numbers were read by the last number)
  # is listed as such, then measured again and replaced, at the same size.
  path = out / "tasks" / "rg-chain_sum-d0.json"
  older = json.loads(path.read_text())
  older["spec"]["task_kwargs"].pop("numeric_answers")
  path.write_text(json.dumps(older))
  assert bm.main(["--table", "--out", str(out)]) == 0
  assert "Measured under an older spec (measured again on the next run): rg-chain_sum-d0." \
      in (out / "table.md").read_text()
  assert bm.main(["--tasks", "rg-chain_sum-d0", "--out", str(out), "--num_samples", "16"]) == 0
  assert calls[-1] == "rg-chain_sum-d0" and len(calls) == 5
  assert json.loads(path.read_text())["spec"]["task_kwargs"]["numeric_answers"] is True
  assert "older spec" not in (out / "table.md").read_text()
  # A summary whose task left the candidates is kept in the table, never chosen, and
  # does not stop the rebuild, though its spec no longer resolves.
  gone = json.loads(first)
  gone["spec"].update(key="arithmetic-d9", kind="gone")
  (out / "tasks" / "arithmetic-d9.json").write_text(json.dumps(gone))
  assert bm.main(["--table", "--out", str(out)]) == 0
  table = (out / "table.md").read_text()
  assert "No longer candidates (kept in the table, never chosen): arithmetic-d9." in table
  assert "Chosen: arithmetic-d0, rg-spell_backward-d0." in table
  assert "| arithmetic-d9 |" in table and "older spec" not in table


@pytest.mark.slow
@pytest.mark.smollm2
def test_quick_mode_maps_two_kinds_of_task_on_the_real_model(tmp_path):
  """`experiments/base_model.py --quick`: the real model on one of the project's families and
  one of reasoning-gym's, each written as its own JSON at the quick size, the table rebuilt."""
  root = pathlib.Path(__file__).resolve().parents[2]
  proc = subprocess.run([sys.executable, str(root / "experiments" / "base_model.py"), "--quick",
                         "--out", str(tmp_path)], cwd=root, capture_output=True, text=True,
                        timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  keys = sorted(p.stem for p in (tmp_path / "tasks").glob("*.json"))
  assert keys == ["arithmetic-d0", "rg-chain_sum-d0"]
  entry = json.loads((tmp_path / "tasks" / "arithmetic-d0.json").read_text())
  assert (entry["num_prompts"], entry["num_samples"], entry["max_new_tokens"]) == (2, 4, 16)
  assert entry["init_from"] == "smollm2-135m-instruct" and "pass@1" in json.dumps(entry["metrics"])
  assert (tmp_path / "table.md").exists() and "chosen training tasks" in proc.stdout
