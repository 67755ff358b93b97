"""Every reproduction experiment's --quick mode runs end to end and writes its table.

Each script runs in a subprocess (as a user runs it) into a temporary --out, sharing the
session's --shared directory (tests/conftest.py: the quick SFT priors and the shared GRPO
baseline are trained once for every experiment test). The tables must hold one row per
(task, arm), a verdict section, and the plots.

Suite time: the experiments share `harness.main_over_tasks` and have no task-specific
code, so polyepo (and design_select, in its own test) run both task families and the others
one each, alternating (docs/testing.md).
"""
from __future__ import annotations

import csv

import pytest

TASKS = {"entropy_mechanism": ("grid_paths",), "polyepo": ("partition", "grid_paths"),
         "pkpo": ("partition",), "world_vs_path": ("grid_paths",),
         "mixed_precision": ("partition",), "staleness": ("grid_paths",)}


def _expected(module, name: str, tasks) -> tuple[str, set]:
  """(the column naming an arm, the set of (task, arm) rows the table must hold)."""
  if name == "entropy_mechanism" or name == "polyepo":
    arms = ["SFT prior", *module.QUICK_ARMS]
    return "method", {(t, a) for t in tasks for a in arms}
  if name == "mixed_precision":
    return "method", {(t, a) for t in tasks for a in module.ARMS}
  if name == "staleness":
    arms = [f"{m}|{label.replace('k=', '').replace(module.SYNC, '0, (identity)')}"
            for m in module.METHODS for label in module.arms(quick=True)]
    return "staleness", {(t, a) for t in tasks for a in arms}
  if name == "pkpo":
    arms = [f"k_opt = {k}" for k in module.K_OPT] + [module.ANNEALED]
    return "method", {(t, a) for t in tasks for a in arms}
  arms = [f"{b} x {n}|{c}" for b, n in module.splits(quick=True) for c in module.CURRICULA]
  return "B x N", {(t, a) for t in tasks for a in arms}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TASKS))
def test_quick_mode_writes_tables_with_every_arm(name, run_experiment, load_experiment,
                                                 tmp_path):
  out = tmp_path / name
  proc = run_experiment(name, "--tasks", ",".join(TASKS[name]), out=out)
  column, expected = _expected(load_experiment(name), name, TASKS[name])
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  key = (lambda r: (r["task"], f"{r['B x N']}|{r['curriculum']}")) if name == "world_vs_path" \
      else (lambda r: (r["task"], f"{r['method']}|{r['staleness']}, {r['correction']}")) \
      if name == "staleness" else (lambda r: (r["task"], r[column]))
  assert {key(r) for r in rows} == expected
  assert len(rows) == len(expected)
  # Two seeds in the quick mode: every arm's update norm has a confidence interval.
  assert all("±" in r["update_norm"] for r in rows if r.get("update_norm"))
  table = (out / "table.md").read_text()
  assert "## Verdicts" in table
  verdicts = [line for line in table.splitlines() if line.startswith("- [")]
  assert verdicts and all(any(word in v for word in (
      "REPRODUCED", "NOT TESTABLE", "SUPPORTED", "REJECTED", "best split", "(confound)"))
      for v in verdicts)
  pngs = sorted(p.name for p in out.glob("*.png"))
  assert pngs and all((out / p).stat().st_size > 1000 for p in pngs)
  assert "wall time" in proc.stdout
