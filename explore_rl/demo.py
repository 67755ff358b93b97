"""`make demo`: SFT warm start, then GRPO and Poly-EPO from it, then a report.

  python -m explore_rl.demo --workdir runs/demo [--preset small]

Writes runs/demo/{sft,grpo,polyepo}/ (metrics.jsonl, TensorBoard, checkpoints)
and runs/demo/report.md with a table (pass@1, pass@8, distinct successful
strategies, final entropy, wall time) and PNG plots (reward, entropy, pass@k).
Re-running resumes each finished or interrupted run from its checkpoints.
"""
from __future__ import annotations

import argparse
import os
import time

from explore_rl.config_files import load_config
from explore_rl.training.metrics import read_metrics

METHODS = (("grpo", "GRPO"), ("polyepo", "Poly-EPO (polychromatic set RL)"))


def _last_eval(rows: list[dict]) -> dict:
  return next(r for r in reversed(rows) if "pass@1" in r)


def _plots(workdir: str, runs: dict[str, list[dict]]) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  files = []
  for key, label in (("reward_mean", "reward (train)"), ("rollout_entropy", "entropy (nats/token)")):
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, rows in runs.items():
      if name != "sft":
        ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=name)
    ax.set_xlabel("RL step")
    ax.set_ylabel(label)
    ax.legend()
    fig.tight_layout()
    files.append(f"{key}.png")
    fig.savefig(os.path.join(workdir, files[-1]), dpi=120)
    plt.close(fig)
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for name, rows in runs.items():
    ev = _last_eval(rows)
    ks = sorted(int(k[5:]) for k in ev if k.startswith("pass@") and "_" not in k)
    ax.errorbar(ks, [ev[f"pass@{k}"] for k in ks], [ev[f"pass@{k}_stderr"] for k in ks],
                marker="o", capsize=3, label=name)
  ax.set_xscale("log", base=2)
  ax.set_xlabel("k")
  ax.set_ylabel("pass@k (held-out)")
  ax.legend()
  fig.tight_layout()
  files.append("pass_at_k.png")
  fig.savefig(os.path.join(workdir, files[-1]), dpi=120)
  plt.close(fig)
  return files


def write_report(workdir: str, wall: dict[str, float], preset: str) -> str:
  runs = {name: read_metrics(os.path.join(workdir, name)) for name in ["sft"] + [m for m, _ in
                                                                              METHODS]}
  lines = [
      "# explore_rl demo report", "",
      f"Task `partition` (difficulty 0.5), preset `{preset}`, 2-core CPU. Held-out: 64 prompts x "
      "8 samples at temperature 1. `distinct` = distinct successful strategies per prompt "
      "(of 8 samples); entropy = mean per-token policy entropy on held-out samples.", "",
      "| method | pass@1 | pass@8 | distinct | entropy | wall time (s) |",
      "|---|---|---|---|---|---|",
  ]
  labels = {"sft": "SFT prior", **dict(METHODS)}
  for name, rows in runs.items():
    ev = _last_eval(rows)
    lines.append(f"| {labels[name]} | {ev['pass@1']:.3f} ± {ev['pass@1_stderr']:.3f} | "
                 f"{ev['pass@8']:.3f} ± {ev['pass@8_stderr']:.3f} | "
                 f"{ev['distinct_strategies']:.2f} | {ev['eval_entropy']:.3f} | "
                 f"{wall.get(name, float('nan')):.0f} |")
  lines += ["", *[f"![{f}]({f})" for f in _plots(workdir, runs)], ""]
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines))
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/demo")
  parser.add_argument("--preset", default="small")
  args = parser.parse_args(argv)
  from explore_rl.training.rl import train_rl
  from explore_rl.training.sft import train_sft
  wall = {}
  sft_dir = os.path.join(args.workdir, "sft")
  t0 = time.perf_counter()
  train_sft(load_config("sft", {"model": args.preset}), sft_dir)
  wall["sft"] = time.perf_counter() - t0
  for name, _ in METHODS:
    t0 = time.perf_counter()
    train_rl(load_config(name, {"init_from": sft_dir}), os.path.join(args.workdir, name))
    wall[name] = time.perf_counter() - t0
  path = write_report(args.workdir, wall, args.preset)
  print(open(path).read())


if __name__ == "__main__":
  main()
