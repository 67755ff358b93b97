"""What exploration does to a real pretrained model (SmolLM2-135M-Instruct): does GRPO raise
pass@1 while collapsing the base model's strategies and pass@k, and do Poly-EPO, Clip-Cov,
PKPO and self-distillation keep them?

Arms (explore_rl/real_model.py): the base model (control), GRPO, Poly-EPO, Clip-Cov,
PKPO (k = 8), self-distillation with logit aggregation; each trained from the model
itself (no SFT), full fine-tuning, at the same sample budget. Tasks: the training tasks
the base model's map chose (results/base_model, experiments/base_model.py), or any
candidate of the map named with --tasks (the table says which the map did not choose).

  .venv/bin/python experiments/real_model.py --core      # GRPO vs Poly-EPO vs base, task 1
  .venv/bin/python experiments/real_model.py             # every arm, both tasks, 3 seeds
  .venv/bin/python experiments/real_model.py --arms grpo,pkpo --tasks rg-chain_sum-d0
  .venv/bin/python experiments/real_model.py --table     # rebuild tables and plots only
  .venv/bin/python experiments/real_model.py --quick     # smoke; writes results/real_model_quick
  .venv/bin/python experiments/real_model.py --scale full  # writes results/real_model_full
  .venv/bin/python experiments/real_model.py --scale gpu   # writes results/real_model_gpu

Each finished run writes OUT/runs/<arm>-<task>-<seed>.json (its config, final held-out
metrics: pass@k and distinct strategies on the scale's final evaluation, entropy, update
norm, the training curves, wall time and machine) the moment it finishes; a run whose
summary exists is skipped, never run again. Runs go seed by seed (base, then each trained
arm, for seed 0, then seed 1, ...), so a stopped experiment leaves whole paired seeds.
OUT/table.md, table.csv and the plots are rebuilt from the summaries after every run: 95%
t-intervals over seeds, differences paired by seed (same held-out problems and sampling
key), one verdict per claim. One OUT holds one scale (a summary of another scale there is
refused). Training workdirs (checkpoints) live under SHARED/real_model/ and are not
committed.

Scales (real_model.SCALES): cpu, the default (what a 3-hour session on 2 cores fits for
the core comparison): 10 steps of 8 prompts x 8 samples x 128 new tokens, full
fine-tuning with bf16 matmul inputs, lr 2e-5; final evaluation 32 prompts x 16 samples at
temperature 1 (pass@16). full: 40 steps, lr 5e-6, final 64 x 64. gpu: 200 steps of 16 x
8 x 256. Quick: arms base and GRPO on arithmetic-d0, 1 seed, 2 steps of 2 x 2 x 16
tokens, final evaluation 4 x 4 (a test of the pipeline, no claim decided).
Hardware and wall times: each summary's `machine` and `wall_s`; the table's notes.
Measured: --quick 69 s wall, peak RSS 5.4 GB (2-core Intel Xeon, load 0.2, compile cache
possibly warm). One 8 x 8 x 128 step on 2 cores: 86 s at fp32 (30 s sampling, 56 s
update), 53 s with bf16 matmuls (25 s, 29 s); steps get faster as GRPO shortens the
replies. --core at the cpu scale: 96 min for its 9 runs (base 4-7 min, a trained run
11-17 min with its evaluations). Clip-Cov and PKPO: 12-19 min a run; self-distillation
22-23 min (2-core AMD EPYC: its update needs the full logits of student and teacher).
"""
from __future__ import annotations

import itertools
import os
import sys
import time

import numpy as np

from explore_rl import harness as ex
from explore_rl import real_model as rm
from explore_rl import summaries
from explore_rl.eval import base_map

DEFAULT_OUT = os.path.join("results", "real_model")   # the cpu scale; others: _<scale>
QUICK_ARMS, QUICK_TASK = ("base", "grpo"), "arithmetic-d0"
CORE_ARMS = ("base", "grpo", "polyepo")
EXPLORERS = ("polyepo", "clip_cov", "pkpo", "self_distill")
# The final evaluation's metrics a summary keeps (pass@k for every k too).
FINAL_KEYS = ("distinct_strategies", "distinct_correct_answers", "eval_entropy",
              "eval_response_len", "eval_truncated_frac", "coverage")
STEP_KEYS = ("reward_mean", "rollout_entropy", "update_norm")


def default_out(scale: str) -> str:
  """Where a scale's runs go without --out: one folder per scale, since a table pairs runs
  of one scale only (the cpu scale's is results/real_model)."""
  return DEFAULT_OUT if scale == "cpu" else f"{DEFAULT_OUT}_{scale}"


def columns(k: int) -> list[str]:
  """The table's columns, pass@k and distinct@k at k = the final evaluation's samples."""
  return ["task", "arm", "seeds", "pass@1", "pass@8", f"pass@{k}", f"distinct@{k}", "entropy",
          "update norm", "entropy law (a, b, R2)", "pass@1 vs base", f"pass@{k} vs GRPO",
          f"distinct@{k} vs GRPO", "wall (min)"]


def extra_flags(p) -> None:
  p.add_argument("--tasks", default=None, help="task keys (default: the base map's choice)")
  p.add_argument("--arms", default=",".join(rm.ARMS))
  p.add_argument("--core", action="store_true",
                 help="the core comparison first: base, GRPO, Poly-EPO on the first task")
  p.add_argument("--base_map", default=os.path.join("results", "base_model"))
  p.add_argument("--init_from", default=rm.MODEL)
  p.add_argument("--table", action="store_true", help="rebuild tables and plots only")
  p.add_argument("--scale", default="cpu", choices=("cpu", "full", "gpu"),
                 help="cpu: 10 steps, 32 x 16 final evaluation (the default); full: 40 "
                 "steps, 64 x 64; gpu: 200 steps of 16 x 8 x 256 tokens")


# -- one run ------------------------------------------------------------------------------
def run_name(arm: str, task: str, seed: int) -> str:
  return f"{arm}-{task}-{seed}"


def final_metrics(ev: dict) -> dict:
  return {k: v for k, v in ev.items() if (k.startswith("pass@") and "_" not in k)
          or k in FINAL_KEYS}


def run_one(arm: str, spec: base_map.TaskSpec, seed: int, *, scale: str, shared: str,
            init_from: str, policy) -> dict:
  """Trains (except the base arm) and evaluates one run; returns its summary. `policy`:
  the base model as loaded from `init_from` (the task's prompt length, the control)."""
  t0 = time.perf_counter()
  config = rm.arm_config("grpo" if arm == "base" else arm, spec, seed=seed, scale=scale,
                         prompt_len=rm.task_prompt_len(policy, spec, seed=seed),
                         init_from=init_from)
  size = rm.final_eval_size(scale)
  steps, evals = [], []
  if arm == "base":   # the control: the model itself on the runs' held-out problems
    ev = ex.held_out_eval(rm.base_policy(config, policy), config.to_dict(), chunk=4, **size)
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
           f"pass@{k}": stat(r, f"pass@{k}"),
           f"distinct@{k}": stat(r, "distinct_strategies"),
           "entropy": stat(r, "eval_entropy"),
           "wall (min)": ex.fmt(*ex.mean_ci(s["wall_s"] / 60 for s in r.values()), digits=1)}
    if arm != "base":
      row.update({"update norm": ex.fmt(*ex.mean_ci(s["update_norm"] for s in r.values()),
                                        digits=4),
                  "entropy law (a, b, R2)": law(r, base),
                  "pass@1 vs base": ex.fmt(*paired(r, base, "pass@1"))})
    if arm not in ("base", "grpo"):
      row.update({f"pass@{k} vs GRPO": ex.fmt(*paired(r, grpo, f"pass@{k}")),
                  f"distinct@{k} vs GRPO": ex.fmt(*paired(r, grpo, "distinct_strategies"))})
    rows.append(row)
  return rows


def verdicts(task: str, runs: dict) -> list[str]:
  """One line per claim (harness.judge: SUPPORTED / REJECTED / NOT SUPPORTED / NOT
  TESTABLE), from paired-by-seed differences."""
  k = k_max(runs)
  base, grpo = runs.get("base", {}), runs.get("grpo", {})
  family = next(s["task"]["task"] for r in runs.values() for s in r.values())
  lines = []

  def claim(text, a, b, key):
    m, h = paired(a, b, key)
    nums = f"paired difference {ex.fmt(m, h)}"
    if key == "distinct_strategies" and not rm.counts_strategies(family):
      lines.append(f"[{task}] {text}: NOT TESTABLE on this task (one correct answer per "
                   f"problem: distinct@{k} counts its spellings, not strategies): {nums}")
    else:
      lines.append(ex.judge(f"[{task}] {text}", m, h, nums, words=ex.SUPPORT))
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


def task_notes(tasks, chosen) -> str:
  """Which of the tasks trained on the base map chose (`chosen`: its choice, None: not
  read), and which were trained outside its rule."""
  if chosen is None or not tasks:
    return ""
  outside = [t for t in tasks if t not in chosen]
  return (f"Tasks: {', '.join(t for t in tasks if t in chosen) or 'none'} chosen by the "
          "base map's rule (results/base_model/table.md)" + (
              f"; {', '.join(outside)} trained outside it (the map did not choose "
              f"{'it' if len(outside) == 1 else 'them'}: see its row there)"
              if outside else "") + ".")


def write_tables(out: str, scale: str, chosen=None) -> tuple[str, list[str]]:
  """OUT/table.md, table.csv and the plots from OUT/runs/*.json (runs at `scale`); returns
  (the path of table.md, the verdicts). `chosen`: the base map's choice of tasks (None:
  not said)."""
  done = summaries.read_all(os.path.join(out, "runs"))
  rows, lines, plots, xlabels = [], [], {}, {}
  ks = {k_max(runs) for runs in grouped(done).values()}
  if len(ks) > 1:
    raise ValueError(f"{out}: the tasks' final evaluations differ in samples (k = {ks})")
  k = ks.pop() if ks else rm.SCALES[scale]["final_samples"]   # no runs yet
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
      f"pass@{k} and distinct@{k} are at k = the final evaluation's samples per prompt; ± = "
      "95% t-interval over seeds; 'vs' columns are paired-by-seed "
      "differences (arm − base / arm − GRPO); the entropy law is fitted to (held-out "
      "entropy, pass@1) at every evaluation of the arm's seeds and the base model's. "
      f"distinct@{k} counts distinct correct strategy signatures per prompt: on tasks whose "
      "chat answer is the only signature (arithmetic, reasoning-gym), distinct spellings of "
      "the one correct answer, so the claims about strategies are not testable there.",
      task_notes(list(grouped(done)), chosen),
      f"Machines: {'; '.join(machines) or 'none'}."])
  path = ex.write_results(out, rows, columns(k), title=f"A real model: what exploration does "
                          f"to {rm.MODEL}", notes=notes, plots=plots, xlabel=xlabels)
  return path, lines


def main(argv=None) -> int:
  args, seeds = ex.experiment_args(
      argv, doc=__doc__, out=None, seeds=(1, 3),
      quick_help="smoke: the real model, base and GRPO, 1 seed, 2 steps", extra=extra_flags)
  scale = "quick" if args.quick else args.scale
  out = args.out or default_out(scale)
  tasks = [QUICK_TASK] if args.quick else (args.tasks.split(",") if args.tasks
                                           else rm.chosen_tasks(args.base_map))
  arms = QUICK_ARMS if args.quick else CORE_ARMS if args.core else args.arms.split(",")
  tasks = tasks[:1] if args.core else tasks
  unknown = [a for a in arms if a not in rm.ARMS]
  if unknown:
    raise SystemExit(f"unknown arm {unknown[0]!r}; valid: {', '.join(rm.ARMS)}")
  runs_dir = os.path.join(out, "runs")
  other = sorted({s["scale"] for s in summaries.read_all(runs_dir).values()} - {scale})
  if other:
    raise SystemExit(f"{runs_dir} holds runs at scale {', '.join(other)}, not {scale}: give "
                     "this scale its own --out")
  t0, policy, chosen = time.perf_counter(), None, rm.map_choice(args.base_map)
  # Seed by seed, so that a stopped experiment leaves whole seeds to pair.
  for key, seed, arm in [] if args.table else itertools.product(tasks, seeds, arms):
    name = run_name(arm, key, seed)
    if summaries.exists(runs_dir, name):
      continue
    if policy is None:
      from explore_rl.training.policy_loader import load_initial_policy
      policy = load_initial_policy(args.init_from)
    print(f"{name}: running", flush=True)
    summaries.write(runs_dir, name, run_one(arm, base_map.get_spec(key), seed, scale=scale,
                                            shared=args.shared, init_from=args.init_from,
                                            policy=policy))
    write_tables(out, scale, chosen)
  path, lines = write_tables(out, scale, chosen)
  print("\n".join(lines))
  print(f"wall time {time.perf_counter() - t0:.0f} s; wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
