"""experiments/self_distillation.py --quick runs end to end into a temporary directory and
writes its table (one row per arm plus the prior's student and teacher), verdicts and plot."""
from __future__ import annotations

import csv

import pytest



@pytest.mark.slow
def test_quick_mode_writes_the_table(tmp_path, run_experiment, load_experiment):
  module = load_experiment("self_distillation")
  out = tmp_path / "out"
  proc = run_experiment("self_distillation", out=out)
  with open(out / "table.csv") as f:
    rows = {r["method"]: r for r in csv.DictReader(f)}
  assert set(rows) == {"SFT prior (student, plain prompt)",
                       "SFT prior (teacher, hinted prompt)", *module.QUICK_ARMS}
  assert rows["SD trust_region (0.1)"]["distill_loss"] != "n/a"
  assert rows["GRPO"]["distill_loss"] == "n/a"
  assert rows["aggregated sampling (poe, TIS)"]["mismatch/is_weight_mean"] != "n/a"
  assert all(float(rows[a]["sampled_tokens_M"]) > 0 for a in module.QUICK_ARMS)
  table = (out / "table.md").read_text()
  assert "## Verdicts" in table and table.count("- [countdown]") == len(module.QUICK_ARMS) - 1
  assert (out / "pass1_vs_sampled_tokens.png").stat().st_size > 1000
  assert "wall time" in proc.stdout
