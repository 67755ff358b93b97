"""experiments/design_select.py --quick runs end to end: both selectors, paired deltas, a
verdict per claim and the plots. One task family here (suite time: the experiments share
`harness.main_over_tasks`, and tests/test_experiments_quick.py runs polyepo on both)."""
from __future__ import annotations

import csv

import pytest

TASKS = ("partition",)


@pytest.mark.slow
def test_quick_mode_writes_the_table(tmp_path, run_experiment):
  out = tmp_path / "out"
  proc = run_experiment("design_select", "--tasks", ",".join(TASKS), out=out)
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert [(r["task"], r["selector"]) for r in rows] == [
      (t, s) for t in TASKS for s in ("design", "random")]
  for row in rows:
    assert "±" in row["pass@1"] and "±" in row["r̂ kept"]
    assert ("±" in row["Δ pass@8 vs random"]) == (row["selector"] == "design")
  table = (out / "table.md").read_text()
  verdicts = [line for line in table.splitlines() if line.startswith("- [")]
  assert len(verdicts) == 4 * len(TASKS)
  assert all("design selection" in v and "paired Δ" in v for v in verdicts)
  assert "scale quick" in table and "wall time" in proc.stdout
  assert {p.name for p in out.glob("*.png")} == {
      f"{stem}_{t}.png" for stem in ("distinct", "train_distinct") for t in TASKS}
