"""experiments/best_arm_identification.py --quick writes the table files."""
from __future__ import annotations

import csv
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STRATEGIES = ["uniform", "thompson", "design", "xy_adaptive", "rage"]


@pytest.mark.slow
def test_quick_mode_writes_tables(tmp_path):
  out = tmp_path / "bai"
  subprocess.run([sys.executable, str(ROOT / "experiments" / "best_arm_identification.py"),
                  "--quick", "--workers", "1", "--out", str(out)], check=True, cwd=ROOT,
                 timeout=180)
  rows = list(csv.DictReader(open(out / "table.csv")))
  assert {r["strategy"] for r in rows} == set(STRATEGIES)
  assert len(rows) == 3 * len(STRATEGIES)  # three hard instances in quick mode
  for r in rows:
    assert float(r["q25"]) <= float(r["median"]) <= float(r["q75"])
    assert r["error_rate"] == "nan" or float(r["error_rate"]) <= 0.2  # 5 seeds: ≤ 1 error
  by = {(r["instance"], r["strategy"]): r for r in rows}
  for d in (4, 8):  # the adaptive designs beat uniform allocation on the hard instance
    uniform = float(by[(f"soare(0.3) d={d}", "uniform")]["median"])
    assert float(by[(f"soare(0.3) d={d}", "design")]["median"]) < 0.5 * uniform
  table = (out / "table.md").read_text()
  assert "| instance |" in table and all(s in table for s in STRATEGIES)
  assert (out / "samples.png").stat().st_size > 10_000
  runs = list(csv.DictReader(open(out / "runs.csv")))
  assert len(runs) == 5 * len(rows)


def test_quick_defaults_write_to_their_own_folder(load_experiment):
  """--quick without --out never writes over the committed full results."""
  best_arm_identification = load_experiment("best_arm_identification")
  quick = best_arm_identification.parse_args(["--quick"])
  assert (quick.out, quick.seeds, quick.max_rounds) == (
      "results/best_arm_identification_quick", 5, 2_500)
  full = best_arm_identification.parse_args(["--seeds", "3", "--out", "elsewhere"])
  assert (full.out, full.seeds, full.max_rounds) == ("elsewhere", 3, 10_000)
