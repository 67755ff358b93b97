"""experiments/world_sampling.py --quick runs end to end (in a subprocess, as a user runs
it) and writes both tables: one row per world-sampling arm with every family's held-out
pass@1, and ours vs reasoning-gym's countdown side by side."""
from __future__ import annotations

import csv

import pytest


@pytest.mark.slow
def test_world_sampling_quick_writes_both_tables(tmp_path, run_experiment, load_experiment):
  out = tmp_path / "out"
  run_experiment("world_sampling", out=out, timeout=1800)
  ws = load_experiment("world_sampling")
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["arm"] for r in rows] == ["SFT prior (no RL)", *ws.ARMS]
  for row in rows:
    for family in ws.TRAIN + ws.HELD_OUT:  # every family evaluated, held-out ones too
      value = float(row[family].split(" ")[0])
      assert 0.0 <= value <= 1.0, (row["arm"], family, row[family])
  for row in rows[1:]:
    assert float(row["GFLOPs read"].split(" ")[0]) > 0
    assert "±" in row["trained 8: pass@1"]  # two seeds: an interval
  with open(out / "countdown.csv") as f:
    cd = list(csv.DictReader(f))
  assert [r["world"] for r in cd] == ["countdown", "reasoning_gym:countdown"]
  assert cd[0]["sandbox calls"].startswith("0")  # ours never reaches the pool
  table = (out / "table.md").read_text()
  assert "## Ours vs reasoning-gym: countdown side by side" in table
  assert "| reasoning_gym:countdown |" in table and "Wall time" in table
  assert "Final draw probabilities of the adaptive arm" in table
