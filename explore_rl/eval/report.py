"""A markdown report comparing runs: a table of held-out metrics and PNG plots.

Used by `make demo` (SFT, GRPO, Poly-EPO) and `experiments/compare_methods.py`.
"""
from __future__ import annotations

import os
from typing import Mapping

from explore_rl.metrics_log import read_metrics


def last_eval(rows: list[dict]) -> dict:
  evals = [r for r in rows if "pass@1" in r]
  if not evals:
    raise ValueError("the run has no evaluation rows (pass@1) yet")
  return evals[-1]


def _plot(path: str, runs: Mapping[str, list[dict]], key: str, ylabel: str):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for name, rows in runs.items():
    pts = [(r["step"], r[key]) for r in rows if key in r]
    if pts:
      ax.plot(*zip(*pts), label=name)
  ax.set_xlabel("step")
  ax.set_ylabel(ylabel)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _plot_pass_at_k(path: str, runs: Mapping[str, list[dict]]):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for name, rows in runs.items():
    ev = last_eval(rows)
    ks = _ks(ev)
    ax.errorbar(ks, [ev[f"pass@{k}"] for k in ks], [ev[f"pass@{k}_stderr"] for k in ks],
                marker="o", capsize=3, label=name)
  ax.set_xscale("log", base=2)
  ax.set_xlabel("k")
  ax.set_ylabel("pass@k (held-out)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


# Drawn for runs that logged them: training on rollouts of an older policy
# (`rollout.max_staleness`, docs/async.md) or another distribution (importance corrections).
OFF_POLICY_PLOTS = (("rollout/staleness_mean", "staleness", "rollout staleness (versions)"),
                    ("mismatch/kl", "mismatch_kl", "KL(sampler || learner) per token"))


def _ks(ev: dict) -> list[int]:
  return sorted(int(k[5:]) for k in ev if k.startswith("pass@") and "_" not in k)


def write_report(out_dir: str, run_dirs: Mapping[str, str], *, wall: Mapping[str, float],
                 intro: str) -> str:
  """Writes out_dir/report.md (+ reward.png, entropy.png, pass_at_k.png, and
  staleness.png, mismatch_kl.png when a run logged those); returns its path.

  run_dirs: label -> workdir, in table order. RL runs (with `reward_mean`) are
  drawn in the reward/entropy plots; every run is in the table and pass@k plot,
  whose k_max is the largest k every run evaluated.
  """
  os.makedirs(out_dir, exist_ok=True)
  runs = {label: read_metrics(d) for label, d in run_dirs.items()}
  k_max = max(set.intersection(*(set(_ks(last_eval(rows))) for rows in runs.values())))
  lines = ["# explore_rl report", "", intro, "",
           f"| method | pass@1 | pass@{k_max} | distinct successful strategies | entropy | "
           "wall time (s) |", "|---|---|---|---|---|---|"]
  for label, rows in runs.items():
    ev = last_eval(rows)
    lines.append(f"| {label} | {ev['pass@1']:.3f} ± {ev['pass@1_stderr']:.3f} | "
                 f"{ev[f'pass@{k_max}']:.3f} ± {ev[f'pass@{k_max}_stderr']:.3f} | "
                 f"{ev['distinct_strategies']:.2f} | {ev['eval_entropy']:.3f} | "
                 f"{wall.get(label, float('nan')):.0f} |")
  rl = {label: rows for label, rows in runs.items() if "reward_mean" in rows[-1]}
  _plot(os.path.join(out_dir, "reward.png"), rl, "reward_mean", "train reward")
  _plot(os.path.join(out_dir, "entropy.png"), rl, "rollout_entropy", "entropy (nats/token)")
  _plot_pass_at_k(os.path.join(out_dir, "pass_at_k.png"), runs)
  images = ["![reward](reward.png) ![entropy](entropy.png) ![pass@k](pass_at_k.png)"]
  for key, stem, ylabel in OFF_POLICY_PLOTS:
    if any(key in row for rows in rl.values() for row in rows):
      _plot(os.path.join(out_dir, f"{stem}.png"), rl, key, ylabel)
      images.append(f"![{stem}]({stem}.png)")
  lines += ["", " ".join(images), ""]
  path = os.path.join(out_dir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path
