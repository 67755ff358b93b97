"""experiments/two_policies.py --quick runs end to end (every arm, both tables, the plots;
the samplers compared at equal FLOPs)."""
from __future__ import annotations

import csv

import pytest



@pytest.mark.slow
def test_quick_mode_writes_both_tables(tmp_path, run_experiment):
  out = tmp_path / "out"
  proc = run_experiment("two_policies", out=out)
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["arm"] for r in rows] == ["GRPO", "Poly-EPO", "explore Poly-EPO → exploit GRPO",
                                      "explore pass@k → exploit GRPO"]
  for row in rows:
    assert "±" in row["exploit pass@1"] and "±" in row["explore pass@8"]
  assert all("±" in r["mismatch/ess"] for r in rows if "exploit GRPO" in r["arm"])
  table = (out / "table.md").read_text()
  samplers = (out / "samplers" / "table.md").read_text()
  for sampler in ("independent", "sequential", "sketch"):
    assert f"| {sampler} |" in samplers
  with open(out / "samplers" / "table.csv") as f:
    by = {r["sampler"]: r for r in csv.DictReader(f)}
  # Equal FLOPs: a sequential group of 8 costs several independent ones.
  assert int(by["independent"]["prior: samples/prompt"].split()[0]) > 8
  assert by["sequential"]["prior: samples/prompt"].startswith("8 ")
  verdicts = [line for text in (table, samplers) for line in text.splitlines()
              if line.startswith("- ")]
  assert any("exploit pass@1 is kept" in v for v in verdicts)
  assert any("equal FLOPs" in v for v in verdicts)
  assert all(v.startswith("- SMOKE") for v in verdicts)
  pngs = {p.name for p in out.glob("*.png")}
  assert pngs == {"explore_distinct.png", "explore_pass8.png", "exploit_pass1.png"}
  assert (out / "samplers" / "train_distinct_by_sampler.png").stat().st_size > 1000
  assert "wall time" in proc.stdout
