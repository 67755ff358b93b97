"""explore_rl.harness: t-intervals, reuse of finished runs, tables and plots."""
import math
import os

import numpy as np
import pytest

from explore_rl import harness
from explore_rl.config_files import load_config


def test_mean_ci_is_the_student_t_interval():
  mean, half = harness.mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
  assert math.isnan(harness.mean_ci([5.0])[1])
  assert harness.fmt(*harness.mean_ci([1.0, 2.0, 3.0])) == "2.000 ± 2.484"
  assert harness.t95(100) == 1.96 and harness.t95(11) == 2.228   # conservative


def test_judge_reads_the_interval_and_refuses_a_zero_width_one():
  words = harness.SUPPORT
  assert harness.judge("c", 0.5, 0.2, "n", words) == "c: SUPPORTED: n"
  assert harness.judge("c", -0.5, 0.2, "n", words) == f"c: {words[1]}: n"
  assert harness.judge("c", 0.1, 0.2, "n", words) == f"c: {words[2]}: n"
  assert "NOT TESTABLE (one seed" in harness.judge("c", 0.5, math.nan, "n", words)
  # Two seeds with the same difference: a zero-width interval, not certainty.
  m, h = harness.mean_ci([-0.25, -0.25])
  assert h == 0 and "NOT TESTABLE (every seed gave the same" in harness.judge("c", m, h, "n")
  assert harness.judge("c", *harness.mean_ci([0.0, 0.0]), "n") == f"c: {harness.REPRODUCTION[2]}: n"


def test_finished_runs_are_reused_not_retrained(tmp_path):
  make = lambda seed: load_config("grpo:tiny", {"total_steps": 1, "eval_every": 1,
                                                "checkpoint_every": 1})
  runs = harness.run_arm("grpo", make, seeds=[0, 1], root=str(tmp_path))
  assert sorted(runs) == [0, 1]
  metrics = os.path.join(runs[0], "metrics.jsonl")
  stamp = os.stat(metrics).st_mtime_ns
  assert harness.run_arm("grpo", make, seeds=[0], root=str(tmp_path)) == {0: runs[0]}
  assert os.stat(metrics).st_mtime_ns == stamp
  summary = harness.summarize(runs, ["pass@1"])
  assert "±" in summary["pass@1"]
  steps, mean, half = harness.curves(runs, "pass@1")
  assert steps.tolist() == [1] and mean.shape == half.shape == (1,)


def test_a_run_stopped_by_a_signal_stops_the_experiment(tmp_path, monkeypatch):
  # The trainer returns after a SIGTERM's save, short of total_steps: the experiment must
  # not go on to tabulate that run as a finished seed.
  from explore_rl.training import trainers
  config = load_config("grpo:tiny", {"total_steps": 3})

  def stopped_after_one_step(config, workdir, **kwargs):
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
      f.write('{"step": 1, "loss": 0.5}\n')
  monkeypatch.setattr(trainers.TRAINERS, "get", lambda name: stopped_after_one_step)
  with pytest.raises(SystemExit, match="stopped before step 3 .* run the same command"):
    harness.train(config, str(tmp_path))


def test_write_results_writes_table_csv_and_plots(tmp_path):
  rows = [{"method": "a", "pass@1": "0.5 ± 0.1"}, {"method": "b", "pass@1": "0.6 ± 0.1"}]
  path = harness.write_results(
      str(tmp_path), rows, ["method", "pass@1"], title="T", notes="verdict: none",
      plots={"reward": {"a": (np.arange(3), np.ones(3), np.full(3, 0.1))}})
  text = open(path).read()
  assert "| a | 0.5 ± 0.1 |" in text and "verdict: none" in text and "reward.png" in text
  assert open(tmp_path / "table.csv").read().splitlines()[0] == "method,pass@1"
  assert (tmp_path / "reward.png").stat().st_size > 1000


def test_quick_runs_default_to_their_own_git_ignored_folder(tmp_path):
  """A smoke run never writes over an experiment's committed results."""
  def out(*argv, default=os.path.join("results", "x")):
    args, _ = harness.experiment_args(list(argv) + ["--shared", str(tmp_path)], doc="d",
                                 out=default, quick_help="q", seeds=(1, 3))
    return args.out
  assert out() == os.path.join("results", "x")
  assert out("--quick") == os.path.join("results", "x_quick")
  assert out("--quick", "--out", "elsewhere") == "elsewhere"
  assert out("--quick", default=None) is None   # the experiment picks its own per scale
  with open(os.path.join(os.path.dirname(__file__), "..", ".gitignore")) as f:
    assert "results/*_quick/" in f.read().split()
