"""The shared harness of `experiments/`: runs reused from their workdirs, seeds, 95% CIs,
tables and plots.

  prior = sft_prior("partition", seed=0, quick=args.quick)        # shared by experiments
  runs = run_arm("grpo", lambda seed: load_config("grpo", {"init_from": prior}),
                 seeds=[0, 1, 2], root=f"{out}/runs")             # {seed: workdir}
  rows = [{"method": "GRPO", **summarize(runs, ["pass@1", "pass@8"])}]
  write_results(out, rows, ["method", "pass@1", "pass@8"], title=..., notes=...)

A run that two experiments need (the SFT prior, a GRPO baseline) is trained once: a
workdir whose metrics already reach `total_steps` is read, not retrained, and an
interrupted one resumes. Confidence intervals are over seeds (Student's t, 95%),
reported as "mean ± half-width"; `mean_ci` also serves intervals over prompts.
"""
from __future__ import annotations

import csv
import math
import os
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics

SHARED_ROOT = os.path.join("results", "_shared")
# Two-sided 95% Student-t critical values by degrees of freedom (1.96 beyond 30).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df: int) -> float:
  """The two-sided 95% Student-t quantile for `df` degrees of freedom (conservative between
  tabulated values)."""
  if df < 1:
    return math.nan
  known = [d for d in _T95 if d <= df]
  return _T95[max(known)] if df <= 30 else 1.96


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
  """(mean, half-width of the 95% t-interval); half-width NaN for a single value."""
  x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
  if x.size == 0:
    return math.nan, math.nan
  if x.size == 1:
    return float(x[0]), math.nan
  return float(x.mean()), float(t95(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def fmt(mean: float, half: float, digits: int = 3) -> str:
  """'0.412 ± 0.031' (no interval for one seed)."""
  if not np.isfinite(mean):
    return "n/a"
  return f"{mean:.{digits}f}" if not np.isfinite(half) else \
      f"{mean:.{digits}f} ± {half:.{digits}f}"


# -- runs -------------------------------------------------------------------------------
def finished(workdir: str, total_steps: int) -> bool:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return False
  rows = read_metrics(workdir, strict=False)
  return bool(rows) and rows[-1]["step"] >= total_steps


def train(config, workdir: str) -> list[dict]:
  """Trains `config` in `workdir` unless it already finished there; returns its metrics rows."""
  if not finished(workdir, config.total_steps):
    from explore_rl.cli import TRAINERS
    TRAINERS.get(config.get("trainer", "rl"))(config, workdir, progress=False)
  return read_metrics(workdir)


def sft_prior(task: str = "partition", *, seed: int = 0, quick: bool = False,
              difficulty: float | None = None, root: str = SHARED_ROOT,
              overrides: Mapping | None = None) -> str:
  """The workdir of an SFT prior on `task` (trained once, shared by every experiment).

  Full: `configs/sft.py` (small preset, 400 steps), as `make demo`. Quick: the tiny
  preset for 60 steps, enough for varied rewards in smoke runs.
  """
  config = load_config("sft:tiny" if quick else "sft")
  config.task, config.seed = task, seed
  if difficulty is not None:
    config.difficulty = difficulty
  if quick:
    config.total_steps, config.eval_every, config.checkpoint_every = 60, 60, 60
    config.batch_size, config.optim.learning_rate, config.optim.warmup_steps = 16, 5e-3, 0
  for key, value in (overrides or {}).items():
    node, *path = [config, *key.split(".")]
    for part in path[:-1]:
      node = node[part]
    node[path[-1]] = value
  name = f"{task}-d{config.difficulty:g}-{config.model}-{config.total_steps}-seed{seed}"
  workdir = os.path.join(root, "sft", name)
  train(config, workdir)
  return workdir


def run_arm(name: str, make_config: Callable[[int], object], seeds: Sequence[int],
            root: str) -> dict[int, str]:
  """Trains (or reuses) one arm for every seed: {seed: workdir}. `make_config(seed)` gives
  the ConfigDict; its `seed` is set to the seed here."""
  out = {}
  for seed in seeds:
    config = make_config(seed)
    config.seed = seed
    workdir = os.path.join(root, name, f"seed{seed}")
    train(config, workdir)
    out[seed] = workdir
  return out


# -- summaries --------------------------------------------------------------------------
def final_eval(workdir: str) -> dict:
  """The last row of a run that holds held-out metrics (pass@1)."""
  evals = [r for r in read_metrics(workdir) if "pass@1" in r]
  if not evals:
    raise ValueError(f"{workdir} has no evaluation rows")
  return evals[-1]


def summarize(runs: Mapping[int, str], keys: Sequence[str], *,
              digits: int = 3) -> dict[str, str]:
  """{key: 'mean ± CI'} over seeds of each key's value at the final evaluation."""
  finals = [final_eval(w) for w in runs.values()]
  return {k: fmt(*mean_ci(f.get(k) for f in finals), digits=digits) for k in keys}


def curves(runs: Mapping[int, str], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, CI half-width) of `key` over seeds, on the steps every seed logged."""
  per_seed = [{r["step"]: r[key] for r in read_metrics(w) if key in r} for w in runs.values()]
  steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
  stats = [mean_ci(s[t] for s in per_seed) for t in steps]
  return (np.asarray(steps), np.asarray([m for m, _ in stats]),
          np.asarray([h for _, h in stats]))


# -- output -----------------------------------------------------------------------------
def write_results(out_dir: str, rows: Sequence[Mapping], columns: Sequence[str], *,
                  title: str, notes: str = "",
                  plots: Mapping[str, Mapping[str, tuple]] | None = None,
                  xlabel: str = "step") -> str:
  """Writes OUT/table.md (title, table, notes, plots), OUT/table.csv and OUT/<plot>.png.

  plots: {file stem: {label: (x, mean, half_width)}}, drawn with 95% bands.
  Returns the path of table.md.
  """
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "table.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  lines = [f"# {title}", "", "| " + " | ".join(columns) + " |",
           "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
  if notes:
    lines += ["", notes.strip()]
  for stem, series in (plots or {}).items():
    _plot_bands(os.path.join(out_dir, f"{stem}.png"), series, ylabel=stem, xlabel=xlabel)
    lines += ["", f"![{stem}]({stem}.png)"]
  path = os.path.join(out_dir, "table.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def _plot_bands(path: str, series: Mapping[str, tuple], *, ylabel: str, xlabel: str):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5.5, 3.4))
  for label, (x, mean, half) in series.items():
    x, mean, half = (np.asarray(v, np.float64) for v in (x, mean, half))
    ax.plot(x, mean, marker="o", ms=3, label=label)
    band = np.nan_to_num(half)
    ax.fill_between(x, mean - band, mean + band, alpha=0.2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
