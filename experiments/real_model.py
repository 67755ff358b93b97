"""What exploration does to a real pretrained model (SmolLM2-135M-Instruct): does GRPO raise
pass@1 while collapsing the base model's strategies and pass@64, and do Poly-EPO, Clip-Cov,
PKPO and self-distillation keep them?

Arms (explore_rl/real_model.py): the base model (control), GRPO, Poly-EPO, Clip-Cov,
PKPO (k = 8), self-distillation with logit aggregation; each trained from the model
itself (no SFT), full fine-tuning, at the same sample budget. Tasks: the training tasks
the base model's map chose (results/base_model, experiments/base_model.py).

  .venv/bin/python experiments/real_model.py --core      # GRPO vs Poly-EPO vs base, task 1
  .venv/bin/python experiments/real_model.py             # every arm, both tasks, 3 seeds
  .venv/bin/python experiments/real_model.py --arms grpo,pkpo --tasks rg-chain_sum-d0
  .venv/bin/python experiments/real_model.py --table     # rebuild tables and plots only
  .venv/bin/python experiments/real_model.py --quick     # smoke: the real model, 2 steps
  .venv/bin/python experiments/real_model.py --scale gpu --out results/real_model_gpu

Each finished run writes OUT/runs/<arm>-<task>-<seed>.json (its config, final held-out
metrics: pass@1/8/64 and distinct strategies among 64 samples on 64 prompts, entropy,
update norm, the training curves, wall time and machine) the moment it finishes; a run
whose summary exists is skipped, never run again. OUT/table.md, table.csv and the plots
are rebuilt from the summaries after every run: 95% t-intervals over seeds, differences
paired by seed (same held-out problems and sampling key), one verdict per claim.
Training workdirs (checkpoints) live under SHARED/real_model/ and are not committed.

Scale (real_model.SCALES["full"]): 40 steps of 8 prompts x 8 samples x 128 new tokens,
full fine-tuning, lr 5e-6; final evaluation 64 prompts x 64 samples at temperature 1.
Quick: arms base and GRPO on arithmetic-d0, 1 seed, 2 steps of 2 x 2 x 16 tokens, final
evaluation 4 x 4 (a test of the pipeline, no claim decided).
Hardware and wall times: each summary's `machine` and `wall_s`; the table's notes.
Measured: --quick 69 s wall, peak RSS 5.4 GB (2-core Intel Xeon, load 0.2, compile cache
possibly warm); 418 s and 11.3 GB before the update compiled as one cond (two compiles of
150-170 s). Full runs: not yet (one 8 x 8 x 128 step ~5 min on 2 cores).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from explore_rl import harness as ex
from explore_rl import real_model as rm
from explore_rl import summaries
from explore_rl.eval import base_map

QUICK_ARMS, QUICK_TASK = ("base", "grpo"), "arithmetic-d0"
CORE_ARMS = ("base", "grpo", "polyepo")
EXPLORERS = ("polyepo", "clip_cov", "pkpo", "self_distill")
# The final evaluation's metrics a summary keeps (pass@k for every k too).
FINAL_KEYS = ("distinct_strategies", "distinct_correct_answers", "eval_entropy",
              "eval_response_len", "eval_truncated_frac", "coverage")
STEP_KEYS = ("reward_mean", "rollout_entropy", "update_norm")
COLUMNS = ["task", "arm", "seeds", "pass@1", "pass@8", "pass@64", "distinct@64", "entropy",
           "update norm", "entropy law (a, b, R2)", "pass@1 vs base", "pass@64 vs GRPO",
           "distinct@64 vs GRPO", "wall (min)"]


def extra_flags(p) -> None:
  p.add_argument("--tasks", default=None, help="task keys (default: the base map's choice)")
  p.add_argument("--arms", default=",".join(rm.ARMS))
  p.add_argument("--core", action="store_true",
                 help="the core comparison first: base, GRPO, Poly-EPO on the first task")
  p.add_argument("--base_map", default=os.path.join("results", "base_model"))
  p.add_argument("--init_from", default=rm.MODEL)
  p.add_argument("--table", action="store_true", help="rebuild tables and plots only")
  p.add_argument("--scale", default="full", choices=("full", "gpu"),
                 help="gpu: 200 steps of 16 x 8 x 256 tokens (give it its own --out)")


# -- one run ------------------------------------------------------------------------------
def run_name(arm: str, task: str, seed: int) -> str:
  return f"{arm}-{task}-{seed}"


def final_metrics(ev: dict) -> dict:
  return {k: v for k, v in ev.items() if (k.startswith("pass@") and "_" not in k)
          or k in FINAL_KEYS}


def run_one(arm: str, spec: base_map.TaskSpec, seed: int, *, scale: str, shared: str,
            init_from: str, policy) -> dict:
  """Trains (except the base arm) and evaluates one run; returns its summary."""
  t0 = time.perf_counter()
  config = rm.arm_config("grpo" if arm == "base" else arm, spec, seed=seed, scale=scale,
                         prompt_len=rm.task_prompt_len(policy, spec, seed=seed),
                         init_from=init_from)
  size = rm.final_eval_size(scale)
  steps, evals = [], []
  if arm == "base":   # the control: the model itself on the runs' held-out problems
    ev = ex.held_out_eval(policy, config.to_dict(), chunk=4, **size)
    update_norm = 0.0
  else:
    workdir = os.path.join(shared, "real_model", scale, spec.key, arm, f"seed{seed}")
    rows = ex.train(config, workdir)
    ev = ex.wide_eval(workdir, chunk=4, **size)
    update_norm = ex.step_mean(workdir, "update_norm")
    steps = [{k: r[k] for k in ("step", *STEP_KEYS) if k in r} for r in rows
             if "reward_mean" in r]
    evals = [{k: r[k] for k in ("step", "pass@1", "eval_entropy", "distinct_strategies")}
             for r in rows if "pass@1" in r]
  return {"arm": arm, "task": spec.to_json(), "seed": seed, "scale": scale,
          "init_from": init_from, "fine_tuning": "full", "config": config.to_dict(),
          "final": final_metrics(ev), "update_norm": update_norm, "steps": steps,
          "evals": evals, "wall_s": time.perf_counter() - t0, "machine": summaries.machine(),
          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


# -- tables from the summaries --------------------------------------------------------------
def grouped(done: dict) -> dict:
  """{task: {arm: {seed: summary}}} from {name: summary}."""
  out: dict = {}
  for s in done.values():
    out.setdefault(s["task"]["key"], {}).setdefault(s["arm"], {})[s["seed"]] = s
  return out


def k_max(runs: dict) -> int:
  """The largest k every summary of a task measured."""
  return min(max(int(k[5:]) for k in s["final"] if k.startswith("pass@"))
             for arm in runs.values() for s in arm.values())


def paired(a: dict, b: dict, key: str) -> tuple[float, float]:
  """(mean, 95% half-width) over the common seeds of a[seed] − b[seed] of a final metric."""
  return ex.mean_ci(a[s]["final"][key] - b[s]["final"][key] for s in sorted(set(a) & set(b)))


def stat(by_seed: dict, key: str) -> str:
  return ex.fmt(*ex.mean_ci(s["final"].get(key) for s in by_seed.values()))


def law(by_seed: dict, base: dict) -> str:
  """The entropy-law fit R = −a·exp(H) + b (eval/entropy_law.py) pooled over the arm's
  seeds: (held-out entropy, pass@1) at each evaluation, the base model's as step 0."""
  from explore_rl.eval.entropy_law import fit_entropy_law
  points = [(e["eval_entropy"], e["pass@1"]) for s in by_seed.values() for e in s["evals"]]
  points += [(b["final"]["eval_entropy"], b["final"]["pass@1"]) for b in base.values()]
  try:
    fit = fit_entropy_law(*zip(*points)) if len(points) >= 3 else None
  except ValueError:
    fit = None
  return "n/a" if fit is None else f"{fit.a:.3f}, {fit.b:.3f}, {fit.r2:.2f}"


def task_rows(task: str, runs: dict) -> list[dict]:
  k = k_max(runs)
  base, grpo = runs.get("base", {}), runs.get("grpo", {})
  rows = []
  for arm in [a for a in rm.ARMS if a in runs]:
    r = runs[arm]
    row = {"task": task, "arm": rm.LABELS[arm], "seeds": len(r),
           "pass@1": stat(r, "pass@1"), "pass@8": stat(r, "pass@8"),
           "pass@64": stat(r, f"pass@{k}"), "distinct@64": stat(r, "distinct_strategies"),
           "entropy": stat(r, "eval_entropy"),
           "wall (min)": ex.fmt(*ex.mean_ci(s["wall_s"] / 60 for s in r.values()), digits=1)}
    if arm != "base":
      row.update({"update norm": ex.fmt(*ex.mean_ci(s["update_norm"] for s in r.values()),
                                        digits=4),
                  "entropy law (a, b, R2)": law(r, base),
                  "pass@1 vs base": ex.fmt(*paired(r, base, "pass@1"))})
    if arm not in ("base", "grpo"):
      row.update({"pass@64 vs GRPO": ex.fmt(*paired(r, grpo, f"pass@{k}")),
                  "distinct@64 vs GRPO": ex.fmt(*paired(r, grpo, "distinct_strategies"))})
    rows.append(row)
  return rows


def verdicts(task: str, runs: dict) -> list[str]:
  """One line per claim (harness.judge: SUPPORTED / REJECTED / NOT SUPPORTED / NOT
  TESTABLE), from paired-by-seed differences."""
  k = k_max(runs)
  base, grpo = runs.get("base", {}), runs.get("grpo", {})
  lines = []

  def claim(text, a, b, key):
    m, h = paired(a, b, key)
    lines.append(ex.judge(f"[{task}] {text}", m, h, f"paired difference {ex.fmt(m, h)}",
                          words=ex.SUPPORT))
  if base and grpo:
    claim("GRPO raises pass@1 over the base model", grpo, base, "pass@1")
    claim(f"GRPO lowers pass@{k} below the base model's", base, grpo, f"pass@{k}")
    claim(f"GRPO collapses the distinct strategies (among {k} samples)", base, grpo,
          "distinct_strategies")
    claim("GRPO lowers the entropy", base, grpo, "eval_entropy")
  for arm in [a for a in EXPLORERS if a in runs and grpo]:
    label = rm.LABELS[arm]
    claim(f"{label} keeps more distinct strategies than GRPO", runs[arm], grpo,
          "distinct_strategies")
    claim(f"{label} keeps pass@{k} above GRPO's", runs[arm], grpo, f"pass@{k}")
    claim(f"{label} keeps more entropy than GRPO", runs[arm], grpo, "eval_entropy")
  return lines


def curve(by_seed: dict, field: str, key: str) -> tuple:
  """(steps, mean, half-width) over seeds of a per-step (`steps`) or per-eval (`evals`)
  key, on the steps every seed logged."""
  per_seed = [{r["step"]: r[key] for r in s[field] if key in r} for s in by_seed.values()]
  steps = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
  stats = [ex.mean_ci(p[t] for p in per_seed) for t in steps]
  return np.asarray(steps), np.asarray([m for m, _ in stats]), np.asarray([h for _, h in stats])


def task_plots(task: str, runs: dict) -> tuple[dict, dict]:
  k = k_max(runs)
  ks = [x for x in (1, 2, 4, 8, 16, 32, 64) if x <= k]
  trained = {rm.LABELS[a]: r for a, r in runs.items() if a != "base"}
  plots = {f"pass_at_k_{task}": {rm.LABELS[a]: (np.asarray(ks), *map(np.asarray, zip(*[
      ex.mean_ci(s["final"][f"pass@{x}"] for s in r.values()) for x in ks])))
      for a, r in runs.items()}}
  if trained:
    plots[f"reward_{task}"] = {label: curve(r, "steps", "reward_mean")
                               for label, r in trained.items()}
    plots[f"entropy_{task}"] = {label: curve(r, "steps", "rollout_entropy")
                                for label, r in trained.items()}
  return plots, {f"pass_at_k_{task}": "k"}


def write_tables(out: str) -> tuple[str, list[str]]:
  """OUT/table.md, table.csv and the plots from OUT/runs/*.json; returns (the path of
  table.md, the verdicts)."""
  done = summaries.read_all(os.path.join(out, "runs"))
  rows, lines, plots, xlabels = [], [], {}, {}
  for task, runs in grouped(done).items():
    rows += task_rows(task, runs)
    lines += verdicts(task, runs)
    p, x = task_plots(task, runs)
    plots.update(p)
    xlabels.update(x)
  scales = sorted({s["scale"] for s in done.values()})
  machines = sorted({s["machine"].split(", load")[0] for s in done.values()})
  notes = "\n".join([
      "## Verdicts", "", *[f"- {v}" for v in lines], "",
      f"{len(done)} runs (OUT/runs/*.json); scale {', '.join(scales) or 'none'} "
      f"({'; '.join(f'{s}: {rm.SCALES[s]}' for s in scales)}); full fine-tuning. "
      "pass@64 and distinct@64 are at k = the final evaluation's samples per prompt (64 at "
      "the full scale); ± = 95% t-interval over seeds; 'vs' columns are paired-by-seed "
      "differences (arm − base / arm − GRPO); the entropy law is fitted to (held-out "
      "entropy, pass@1) at every evaluation of the arm's seeds and the base model's. "
      "distinct@64 counts distinct correct strategy signatures per prompt: on tasks whose "
      "chat answer is the only signature (arithmetic, reasoning-gym), distinct correct "
      "answers.",
      f"Machines: {'; '.join(machines) or 'none'}."])
  path = ex.write_results(out, rows, COLUMNS, title=f"A real model: what exploration does "
                          f"to {rm.MODEL}", notes=notes, plots=plots, xlabel=xlabels)
  return path, lines


def main(argv=None) -> int:
  args, seeds = ex.experiment_args(
      argv, doc=__doc__, out=os.path.join("results", "real_model"), seeds=(1, 3),
      quick_help="smoke: the real model, base and GRPO, 1 seed, 2 steps", extra=extra_flags)
  scale = "quick" if args.quick else args.scale
  tasks = [QUICK_TASK] if args.quick else (args.tasks.split(",") if args.tasks
                                           else rm.chosen_tasks(args.base_map))
  arms = QUICK_ARMS if args.quick else CORE_ARMS if args.core else args.arms.split(",")
  tasks = tasks[:1] if args.core else tasks
  runs_dir = os.path.join(args.out, "runs")
  t0, policy = time.perf_counter(), None
  for key in [] if args.table else tasks:
    spec = base_map.get_spec(key)
    for arm in arms:
      if arm not in rm.ARMS:
        raise SystemExit(f"unknown arm {arm!r}; valid: {', '.join(rm.ARMS)}")
      for seed in seeds:
        name = run_name(arm, key, seed)
        if summaries.exists(runs_dir, name):
          continue
        if policy is None:
          from explore_rl.training.policy_loader import load_initial_policy
          policy = load_initial_policy(args.init_from)
        print(f"{name}: running", flush=True)
        summaries.write(runs_dir, name, run_one(arm, spec, seed, scale=scale,
                                                shared=args.shared, init_from=args.init_from,
                                                policy=policy))
        write_tables(args.out)
  path, lines = write_tables(args.out)
  print("\n".join(lines))
  print(f"wall time {time.perf_counter() - t0:.0f} s; wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
