"""experiments/preference.py --quick runs end to end into a temporary directory and writes its
table: the SFT prior and every arm (offline DPO, HyPO, online DPO, GRPO), with the data each
trained on, the verdicts and the pass@1 plot."""
from __future__ import annotations

import csv

import pytest


@pytest.mark.slow
def test_quick_mode_writes_the_table_with_every_arm(tmp_path, run_experiment, load_experiment):
  module = load_experiment("preference")
  out = tmp_path / "out"
  proc = run_experiment("preference", "--tasks", "grid_paths", "--seeds", "1", out=out)
  with open(out / "table.csv") as f:
    rows = {r["method"]: r for r in csv.DictReader(f)}
  assert list(rows) == [module.PRIOR, *module.ARMS]
  assert all(r["task"] == "grid_paths" and r["pass@16"] != "n/a" for r in rows.values())
  data = {label: rows[label]["training_data"] for label in module.ARMS}
  assert data["offline DPO"].endswith("offline pairs")            # nothing sampled
  assert "offline pairs + " in data["HyPO (offline DPO + online KL)"]
  assert "offline" not in data["online DPO"] and "online samples" in data["online DPO"]
  table = (out / "table.md").read_text()
  assert "## Verdicts" in table and table.count("- [grid_paths]") == 4
  assert (out / "pass1_grid_paths.png").stat().st_size > 1000
  assert "wall time" in proc.stdout
