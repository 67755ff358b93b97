"""experiments/exploration_diagnostics.py --quick runs end to end: one table row per arm,
the diagnostics in every arm's eval rows, the hindsight metrics in the hindsight arm's."""
from __future__ import annotations

import csv

import pytest

from explore_rl.metrics_log import read_metrics


@pytest.mark.slow
def test_quick_mode_writes_the_table_with_every_arm(tmp_path, run_experiment, load_experiment):
  module = load_experiment("exploration_diagnostics")
  out = tmp_path / "out"
  run_experiment("exploration_diagnostics", out=out)
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["method"] for r in rows] == list(module.ARMS)
  for row in rows:
    for key in module.FINAL:
      assert row[key] not in ("", "n/a"), (row["method"], key)
  for key in module.CURVES:
    assert (out / f"{key}.png").exists()
  assert "Spearman" in (out / "table.md").read_text()
  for label, (name, _) in module.ARMS.items():
    rows = read_metrics(str(out / "runs" / name / "seed0"))
    evals = [r for r in rows if "coverage" in r]
    assert [r["step"] for r in evals] == [1, 2], label
    assert "progress_mean" in evals[1] and "progress_mean" not in evals[0], label
    assert len(evals[-1]["eval_num_correct"]) == module.SCALES["quick"]["eval.num_prompts"]
    if name == "hindsight":
      assert all(r["hindsight_proposals"] == 4 * 4 for r in rows)
