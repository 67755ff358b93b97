"""Every reproduction experiment's --quick mode runs end to end and writes its table.

Each script runs in a subprocess (as a user runs it) into a temporary --out, sharing one
temporary --shared directory (the quick SFT priors and the shared GRPO baseline are
trained once for the four scripts). The tables must hold one row per (task, arm), a
verdict section, and the plots.
"""
from __future__ import annotations

import csv
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TASKS = ("partition", "grid_paths")


def _load(name: str):
  spec = importlib.util.spec_from_file_location(f"experiments_{name}",
                                                ROOT / "experiments" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _expected(name: str) -> tuple[str, set]:
  """(the column naming an arm, the set of (task, arm) rows the table must hold)."""
  module = _load(name)
  if name == "entropy_mechanism" or name == "polyepo":
    arms = ["SFT prior", *module.ARMS]
    return "method", {(t, a) for t in TASKS for a in arms}
  if name == "pkpo":
    arms = [f"k_opt = {k}" for k in module.K_OPT] + [module.ANNEALED]
    return "method", {(t, a) for t in TASKS for a in arms}
  arms = [f"{b} x {n}|{c}" for b, n in module.splits(quick=True) for c in module.CURRICULA]
  return "B x N", {(t, a) for t in TASKS for a in arms}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
  return tmp_path_factory.mktemp("shared")


@pytest.mark.parametrize("name", ["entropy_mechanism", "polyepo", "pkpo", "world_vs_path"])
def test_quick_mode_writes_tables_with_every_arm(name, shared, tmp_path):
  out = tmp_path / name
  env = {**os.environ, "EXPLORE_RL_JAX_CACHE": str(ROOT / ".jax_cache")}
  proc = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"), "--quick",
                         "--out", str(out), "--shared", str(shared)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
  assert proc.returncode == 0, proc.stderr[-3000:]
  column, expected = _expected(name)
  with open(out / "table.csv") as f:
    rows = list(csv.DictReader(f))
  key = (lambda r: (r["task"], f"{r['B x N']}|{r['curriculum']}")) if name == "world_vs_path" \
      else (lambda r: (r["task"], r[column]))
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
