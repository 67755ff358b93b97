"""experiments/design_select.py --quick runs end to end (both selectors, paired deltas); full
mode is refused (not implemented)."""
from __future__ import annotations

import csv
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "experiments" / "design_select.py")


def test_quick_mode_writes_the_table(tmp_path):
  out = tmp_path / "out"
  env = {**os.environ, "EXPLORE_RL_JAX_CACHE": str(ROOT / ".jax_cache")}
  proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--out", str(out), "--shared",
                         str(tmp_path / "shared")],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["selector"] for r in rows] == ["design", "random"]
  for row in rows:
    assert "±" in row["pass@1"] and "±" in row["r̂ kept"]
  assert "±" in rows[0]["Δ pass@8 vs random"] and rows[1]["Δ pass@8 vs random"] == ""
  assert "QUICK MODE" in (out / "table.md").read_text()
  assert "QUICK" in proc.stdout


def test_full_mode_is_refused(tmp_path):
  proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path)], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0 and "only --quick" in proc.stderr
