"""experiments/self_distillation.py --quick runs end to end into a temporary directory and
writes its table (one row per arm plus the prior's student and teacher), verdicts and plot."""
from __future__ import annotations

import csv
import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_quick_mode_writes_the_table(tmp_path):
  spec = importlib.util.spec_from_file_location("sd_experiment",
                                                ROOT / "experiments" / "self_distillation.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  out = tmp_path / "out"
  env = {**os.environ, "EXPLORE_RL_JAX_CACHE": str(ROOT / ".jax_cache")}
  proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "self_distillation.py"),
                         "--quick", "--out", str(out), "--shared", str(tmp_path / "shared")],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / "table.csv") as f:
    rows = {r["method"]: r for r in csv.DictReader(f)}
  assert set(rows) == {"SFT prior (student, plain prompt)",
                       "SFT prior (teacher, hinted prompt)", *module.QUICK_ARMS}
  assert rows["SD trust_region (0.1)"]["distill_loss"] != "n/a"
  assert rows["GRPO"]["distill_loss"] == "n/a"
  assert rows["aggregated sampling (poe, TIS)"]["is_weight_mean"] != "n/a"
  assert all(float(rows[a]["sampled_tokens_M"]) > 0 for a in module.QUICK_ARMS)
  table = (out / "table.md").read_text()
  assert "## Verdicts" in table and table.count("- [countdown]") == len(module.QUICK_ARMS) - 1
  assert (out / "pass1_vs_sampled_tokens.png").stat().st_size > 1000
  assert "wall time" in proc.stdout
