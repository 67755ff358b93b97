"""experiments/real_model.py: tables, paired 95% intervals and verdicts rebuilt from
hand-written run summaries (goldens computed by hand), the run in parts (a finished run is
never run again; --core first), and --quick on the real model (slow)."""
from __future__ import annotations

import csv
import json
import math

import pytest

from explore_rl import summaries

K = 4   # the hand-written final evaluations hold pass@1, pass@2 and pass@4


def summary(arm, seed, *, pass1, pass_k, distinct, entropy, evals=(), task="t1",
            scale="cpu", family="partition"):
  final = {"pass@1": pass1, "pass@2": (pass1 + pass_k) / 2, "pass@4": pass_k,
           "distinct_strategies": distinct, "eval_entropy": entropy}
  return {"arm": arm, "task": {"key": task, "kind": "combinatorial", "task": family},
          "seed": seed,
          "scale": scale, "final": final, "update_norm": 0.0 if arm == "base" else 0.01,
          "steps": [{"step": 1, "reward_mean": 0.1 * (seed + 1), "rollout_entropy": 1.0},
                    {"step": 2, "reward_mean": 0.2 * (seed + 1), "rollout_entropy": 0.9}]
          if arm != "base" else [], "evals": list(evals), "wall_s": 60.0 * (seed + 1),
          "machine": "test CPU, 2 cores, load 1.0, 1.0, 1.0, jax cpu"}


# GRPO's evaluations lie on R = -0.1 exp(H) + 0.5 (entropy law, a = 0.1, b = 0.5), and so
# do the base model's final points (pass@1 0.10, 0.12, 0.14 at exp(H) = 4.0, 3.8, 3.6).
BASE = {"pass1": (0.10, 0.12, 0.14), "pass_k": (0.5, 0.6, 0.7), "distinct": (2.0, 2.0, 2.0),
        "entropy": tuple(math.log(x) for x in (4.0, 3.8, 3.6))}
GRPO = {"pass1": (0.20, 0.22, 0.30), "pass_k": (0.3, 0.4, 0.5), "distinct": (1.5, 1.0, 2.5),
        "entropy": tuple(math.log(x) + d for x, d in zip((4.0, 3.8, 3.6), (0.2, 0.3, 0.4)))}
GRPO_EVALS = ({"step": 2, "pass@1": 0.4, "eval_entropy": 0.0},
              {"step": 2, "pass@1": 0.3, "eval_entropy": math.log(2.0)},
              {"step": 2, "pass@1": 0.2, "eval_entropy": math.log(3.0)})


def write_fixture(runs_dir, family="partition"):
  for seed in range(3):
    for arm, v in (("base", BASE), ("grpo", GRPO)):
      summaries.write(str(runs_dir), f"{arm}-t1-{seed}", summary(
          arm, seed, pass1=v["pass1"][seed], pass_k=v["pass_k"][seed],
          distinct=v["distinct"][seed], entropy=v["entropy"][seed],
          evals=[GRPO_EVALS[seed]] if arm == "grpo" else (), family=family))
  summaries.write(str(runs_dir), "polyepo-t1-0", summary("polyepo", 0, pass1=0.2, pass_k=0.6,
                                                          distinct=3.0, entropy=1.5,
                                                          family=family))


def test_tables_intervals_and_verdicts_from_hand_written_summaries(load_experiment, tmp_path):
  rme = load_experiment("real_model")
  write_fixture(tmp_path / "runs")
  path, lines = rme.write_tables(str(tmp_path), "cpu")
  with open(tmp_path / "table.csv") as f:
    rows = {r["arm"]: r for r in csv.DictReader(f)}
  assert list(rows) == ["base model", "GRPO", "Poly-EPO"]
  # base pass@1 0.10, 0.12, 0.14: mean 0.12, sd 0.02, t(2) = 4.303: 4.303 * 0.02 / sqrt(3).
  assert rows["base model"]["pass@1"] == "0.120 ± 0.050"
  assert rows["base model"]["seeds"] == "3" and rows["Poly-EPO"]["seeds"] == "1"
  # GRPO - base pass@1 per seed 0.10, 0.10, 0.16: mean 0.12, sd 0.0346: ± 0.086.
  assert rows["GRPO"]["pass@1 vs base"] == "0.120 ± 0.086"
  assert rows["GRPO"]["pass@4"] == "0.400 ± 0.248"           # 0.3, 0.4, 0.5
  assert rows["GRPO"]["entropy law (a, b, R2)"] == "0.100, 0.500, 1.00"
  assert rows["GRPO"]["wall (min)"] == "2.0 ± 2.5"           # 1, 2, 3 minutes
  assert rows["Poly-EPO"]["distinct@4 vs GRPO"] == "1.500"   # one seed: no interval
  assert rows["base model"]["update norm"] == ""
  assert lines[:4] == [
      "[t1] GRPO raises pass@1 over the base model: SUPPORTED: paired difference "
      "0.120 ± 0.086",
      # base - GRPO pass@4 0.2 at every seed: a zero-width interval decides nothing.
      f"[t1] GRPO lowers pass@{K} below the base model's: NOT TESTABLE (every seed gave the "
      "same difference: no spread to size an interval from): paired difference 0.200 ± 0.000",
      # base - GRPO distinct 0.5, 1.0, -0.5: mean 0.333, sd 0.764: ± 1.897.
      f"[t1] GRPO collapses the distinct strategies (among {K} samples): NOT SUPPORTED (no "
      "significant difference): paired difference 0.333 ± 1.897",
      # base - GRPO entropy -0.2, -0.3, -0.4: mean -0.3, sd 0.1: ± 0.248, below 0.
      "[t1] GRPO lowers the entropy: REJECTED (the opposite, significantly): paired "
      "difference -0.300 ± 0.248"]
  assert lines[4].startswith("[t1] Poly-EPO keeps more distinct strategies than GRPO: "
                             "NOT TESTABLE")
  assert len(lines) == 7
  table = open(path).read()
  assert "## Verdicts" in table and "test CPU, 2 cores" in table and "Tasks:" not in table
  # A task the base map did not choose is said to be trained outside its rule.
  rme.write_tables(str(tmp_path), "cpu", chosen=["arithmetic-d0"])
  assert "Tasks: none chosen by the base map's rule (results/base_model/table.md); t1 " \
      "trained outside it" in open(path).read()
  rme.write_tables(str(tmp_path), "cpu", chosen=["t1"])
  assert "Tasks: t1 chosen by the base map's rule (results/base_model/table.md)." in \
      open(path).read()
  for stem in ("pass_at_k_t1", "reward_t1", "entropy_t1"):
    assert (tmp_path / f"{stem}.png").stat().st_size > 1000


def test_strategy_claims_are_not_testable_where_signatures_are_answers(load_experiment,
                                                                      tmp_path):
  """On a task whose chat answer is a number (one correct answer per problem), distinct@k
  counts spellings of that answer: the claims about strategies are not decided there,
  whatever the numbers; the other claims are judged as before."""
  rme = load_experiment("real_model")
  write_fixture(tmp_path / "strategies" / "runs")
  write_fixture(tmp_path / "answers" / "runs", family="arithmetic")
  _, by_strategy = rme.write_tables(str(tmp_path / "strategies"), "cpu")
  _, by_answer = rme.write_tables(str(tmp_path / "answers"), "cpu")
  strategic = [i for i, line in enumerate(by_strategy) if "distinct strategies" in line]
  assert strategic == [2, 4]
  for i, (a, b) in enumerate(zip(by_strategy, by_answer)):
    if i in strategic:
      claim, nums = a.split(": ")[0], a.rsplit(": ", 1)[1]
      assert b == (f"{claim}: NOT TESTABLE on this task (one correct answer per problem: "
                   f"distinct@{K} counts its spellings, not strategies): {nums}")
    else:
      assert a == b
  assert "not testable there" in (tmp_path / "answers" / "table.md").read_text()


@pytest.fixture
def fake_runs(load_experiment, monkeypatch):
  """experiments/real_model.py with run_one recording its calls (a summary per call) and
  no model loaded."""
  rme = load_experiment("real_model")
  calls = []

  def run_one(arm, spec, seed, **kw):
    calls.append((arm, spec.key, seed))
    return summary(arm, seed, pass1=0.1 + 0.01 * seed, pass_k=0.5, distinct=2.0,
                   entropy=1.0, task=spec.key)
  monkeypatch.setattr(rme, "run_one", run_one)
  monkeypatch.setattr("explore_rl.training.policy_loader.load_initial_policy",
                      lambda name: object())
  return rme, calls


def write_finished(out, arm, seed, **kw):
  """OUT/runs/<arm>-arithmetic-d0-<seed>.json, as a finished run writes it; its path."""
  return summaries.write(str(out / "runs"), f"{arm}-arithmetic-d0-{seed}", summary(
      arm, seed, pass1=0.5, pass_k=0.9, distinct=1.0, entropy=0.5, task="arithmetic-d0", **kw))


def test_a_finished_run_is_never_run_again(fake_runs, tmp_path):
  rme, calls = fake_runs
  out = tmp_path / "out"
  write_finished(out, "grpo", 1)
  before = (out / "runs" / "grpo-arithmetic-d0-1.json").read_text()
  args = ["--arms", "base,grpo", "--tasks", "arithmetic-d0", "--seeds", "2", "--out", str(out),
          "--shared", str(tmp_path / "shared")]
  assert rme.main(args) == 0
  assert calls == [("base", "arithmetic-d0", 0), ("grpo", "arithmetic-d0", 0),   # seed-major
                   ("base", "arithmetic-d0", 1)]
  assert (out / "runs" / "grpo-arithmetic-d0-1.json").read_text() == before
  assert rme.main(args) == 0            # everything done: nothing runs
  assert len(calls) == 3
  saved = json.loads((out / "runs" / "base-arithmetic-d0-0.json").read_text())
  assert saved["arm"] == "base" and saved["task"]["key"] == "arithmetic-d0"


def test_core_runs_base_grpo_and_polyepo_on_the_first_task(fake_runs, tmp_path):
  rme, calls = fake_runs
  assert rme.main(["--core", "--tasks", "arithmetic-d0,rg-chain_sum-d0", "--seeds", "1",
                   "--out", str(tmp_path / "out"), "--shared", str(tmp_path / "shared")]) == 0
  assert calls == [("base", "arithmetic-d0", 0), ("grpo", "arithmetic-d0", 0),
                   ("polyepo", "arithmetic-d0", 0)]


def test_runs_of_another_scale_in_the_same_out_are_refused(fake_runs, tmp_path):
  rme, calls = fake_runs
  out = tmp_path / "out"
  write_finished(out, "base", 0, scale="quick")
  with pytest.raises(SystemExit, match="scale quick, not cpu"):
    rme.main(["--core", "--tasks", "arithmetic-d0", "--out", str(out),
              "--shared", str(tmp_path / "shared")])
  assert calls == []


def test_each_scale_has_its_own_default_out_and_an_empty_table_names_its_k(
    fake_runs, tmp_path, monkeypatch):
  """Without --out a scale writes results/real_model[_<scale>], so --quick on a clone that
  holds the committed cpu runs neither mixes with them nor is refused."""
  rme, calls = fake_runs
  monkeypatch.chdir(tmp_path)
  write_finished(tmp_path / "results" / "real_model", "base", 0)    # a committed cpu run
  shared = ["--shared", str(tmp_path / "shared")]
  assert rme.main(["--quick", *shared]) == 0
  assert calls == [("base", "arithmetic-d0", 0), ("grpo", "arithmetic-d0", 0)]
  assert sorted(p.name for p in (tmp_path / "results" / "real_model_quick" / "runs").iterdir()) \
      == ["base-arithmetic-d0-0.json", "grpo-arithmetic-d0-0.json"]
  assert rme.main(["--table", "--scale", "full", *shared]) == 0
  assert "pass@64" in (tmp_path / "results" / "real_model_full" / "table.md").read_text()
  assert rme.main(["--table", *shared]) == 0
  assert "pass@4" in (tmp_path / "results" / "real_model" / "table.md").read_text()


def test_arm_configs_share_the_sample_budget_and_pick_the_judge():
  from explore_rl import real_model as rm
  from explore_rl.eval import base_map
  for key, judge in (("countdown-d0", "signature"), ("rg-chain_sum-d0", "embedding")):
    spec = base_map.get_spec(key)
    configs = {arm: rm.arm_config(arm, spec, seed=1, scale="full", prompt_len=128)
               for arm in rm.ARMS if arm != "base"}
    budgets = {(c.total_steps, c.rollout.prompts_per_step, c.rollout.num_samples,
                c.max_response_len) for c in configs.values()}
    assert budgets == {(40, 8, 8, 128)}
    assert all(not c.model_overrides.get("matmul_dtype") for c in configs.values())
    cpu = rm.arm_config("grpo", spec, seed=1, scale="cpu", prompt_len=128)
    assert (cpu.total_steps, cpu.model_overrides.matmul_dtype) == (10, "bfloat16")
    assert configs["polyepo"].judge == judge
    assert configs["pkpo"].objective.advantage_kwargs.k == 8
    assert configs["self_distill"].objective.distill.method == "poe"
    assert all(c.task == spec.task and c.seed == 1 and c.init_from == rm.MODEL
               for c in configs.values())


@pytest.mark.slow
@pytest.mark.smollm2
def test_quick_mode_trains_the_real_model_and_writes_its_summaries(run_experiment, tmp_path):
  out = tmp_path / "real_model"
  proc = run_experiment("real_model", out=out, timeout=900)
  names = sorted(p.name for p in (out / "runs").glob("*.json"))
  assert names == ["base-arithmetic-d0-0.json", "grpo-arithmetic-d0-0.json"]
  grpo = json.loads((out / "runs" / "grpo-arithmetic-d0-0.json").read_text())
  assert grpo["config"]["total_steps"] == 2 and grpo["config"]["init_from"] == \
      "smollm2-135m-instruct"
  assert {"pass@1", "pass@4", "distinct_strategies", "eval_entropy"} <= set(grpo["final"])
  assert [s["step"] for s in grpo["steps"]] == [1, 2] and grpo["update_norm"] >= 0
  with open(out / "table.csv") as f:
    assert [r["arm"] for r in csv.DictReader(f)] == ["base model", "GRPO"]
  assert "wall time" in proc.stdout
