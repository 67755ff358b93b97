"""experiments/exploration_diagnostics.py --quick runs end to end: one table row per arm,
the diagnostics in every arm's eval rows, the hindsight metrics in the hindsight arm's."""
from __future__ import annotations

import csv
import importlib.util
import os
import pathlib
import subprocess
import sys

from explore_rl.metrics_log import read_metrics

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "experiments" / "exploration_diagnostics.py"


def test_quick_mode_writes_the_table_with_every_arm(tmp_path):
  spec = importlib.util.spec_from_file_location("exploration_diagnostics", SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  out, shared = tmp_path / "out", tmp_path / "shared"
  env = {**os.environ, "EXPLORE_RL_JAX_CACHE": str(ROOT / ".jax_cache")}
  proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out),
                         "--shared", str(shared)], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
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
