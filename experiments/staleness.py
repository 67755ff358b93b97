"""Stale rollouts (`rollout.max_staleness`, docs/async.md): does training on rollouts drawn k
policy versions back cost exploration (strategies, pass@k) more than pass@1, and which
importance correction (`objective.is_correction`) recovers it?

Arms per task and method (GRPO, Poly-EPO; `configs/grpo.py`, `configs/polyepo.py`) from the
shared tiny SFT prior at the reproduction scale (`harness.RL_SCALES`), with the learning
rate raised from the configs' 1e-4 (which moves the tiny policy too little in k steps for
staleness to matter) to `LEARNING_RATES[task]`: the larger of 1e-3 and 3e-4 at which the
synchronous GRPO arm still improves over its 40 steps (probed on seed 0: at 1e-3 partition
collapsed, pass@1 0.37 -> 0.09, even synchronously; at 3e-4 it rose 0.28 -> 0.36):
- synchronous (max_staleness 0);
- max_staleness k in {1, 2, 4} x correction in {none, token_tis, seq_mis}: rollout r is drawn
  by version max(0, r - k) in a sampler thread beside the learner, π_old is recomputed by the
  learner, and the correction weights π_old/μ (μ the sampling version).
At k = 0 every correction is the identity (π_old = μ: the independent sampler's ratio is
exactly 1), so the synchronous arm is run once and is each correction's k = 0.

Measured: held-out pass@1, pass@8, distinct strategies and entropy at the end; the step means
of the mismatch diagnostics (mismatch/kl: KL(μ ‖ π_old) per token, mismatch/ess) and of the
staleness; the learner's wall-clock time (Σ step_time, evaluation excluded) until the running
mean of train pass@1 over 4 steps reaches 0.9 x the synchronous arm's final value (the
"time to target": the speed asynchrony buys, or loses by learning less per step). ± = 95%
t-interval over seeds; every comparison is paired by seed with the synchronous arm (same
prior, problem stream, sampling keys and held-out set).

  .venv/bin/python experiments/staleness.py            # full: 3 seeds, 2 tasks, 2 methods
  .venv/bin/python experiments/staleness.py --quick    # smoke (the test suite)

Size: 2 tasks x 2 methods x (1 + 3 x 3) arms x 3 seeds = 120 runs of 40 steps (16 prompts x
8 samples, the tiny preset), in one process: runs of equal shapes share the compiled
sampler, scorer and update, so a run costs ~10-20 s. The 24 k = 0 runs that a correction
would repeat bit for bit are not run (the issue's 144 runs, less those).

Hardware: 2-core Intel Xeon KVM guest, shared with a test suite (load average 3-7),
XLA_FLAGS=--xla_force_host_platform_device_count=2, the sampler time-sharing the devices.
Command: `XLA_FLAGS=--xla_force_host_platform_device_count=2 .venv/bin/python
experiments/staleness.py`. Wall time: 1226 s for the run that wrote the table (all 60
partition runs and 32 grid_paths runs) + ~420 s for the 28 grid_paths runs it read back from
an earlier start at the same settings (stopped to lower partition's learning rate): ~27.5
min in all, under the 35-minute budget.

Outcome (results/staleness/table.md; Δ = arm − synchronous, paired by seed, 95% CI):
- Staleness costs pass@1 and exploration alike, and at 3 seeds the two costs are not told
  apart: no "costs exploration more than pass@1" claim is supported (8 of 8 tests n.s.).
  GRPO at k = 4 without a correction: grid_paths Δ pass@1 −0.397 ± 0.339, Δ pass@8
  −0.312 ± 0.205, Δ strategies −0.448 ± 0.311 (all significant); partition −0.173 ± 0.238,
  −0.260 ± 0.700, −0.651 ± 0.885 (n.s.). Poly-EPO at k = 1 on partition: Δ pass@1
  −0.115 ± 0.059 and Δ strategies −0.688 ± 0.308, both significant.
- No correction recovers it at k = 4: 7 of 8 tests n.s., and seq_mis is significantly worse
  than none for GRPO on grid_paths (strategies −0.375 ± 0.308, pass@8 −0.359 ± 0.303). At
  k = 1 token_tis and seq_mis shrink the losses by mean (GRPO partition Δ pass@1 −0.027 and
  −0.077 vs −0.131 without), within the intervals.
- The gap grows with k: mean per-token mismatch/kl 0.02-0.03 at k = 1, 0.06-0.11 at k = 2,
  0.14-0.18 at k = 4 (partition, lr 3e-4); 0.08-0.14, 0.15-0.34, 0.27-0.73 (grid_paths,
  lr 1e-3). seq_mis keeps an ESS of 0.43-0.85 (it drops sequences), token_tis 0.83-0.99.
- Time to target is not informative here: the 4-step running train pass@1 reaches 0.9 x the
  synchronous final value within the first steps in most runs (1-16 s, first-run
  compilation included), and several stale runs never reach it.
At the learning rates where staleness matters on these tiny models, the synchronous Poly-EPO
arm on grid_paths is itself unstable (pass@1 0.425 ± 0.916: one seed collapsed), so its
intervals are very wide. Quick mode: a smoke test, no claim decided.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from explore_rl import harness as ex
from explore_rl.metrics_log import read_metrics

LEARNING_RATES = {"grid_paths": 1e-3, "partition": 3e-4}   # module docstring
METHODS = {"GRPO": "grpo", "Poly-EPO": "polyepo"}
STALENESS = (1, 2, 4)
CORRECTIONS = ("none", "token_tis", "seq_mis")
QUICK_STALENESS, QUICK_CORRECTIONS = (2,), ("none", "seq_mis")
SYNC = "sync"
FINAL = ("pass@1", "pass@8", "distinct_strategies", "eval_entropy")
STEP = ("rollout/staleness_mean", "mismatch/kl", "mismatch/ess")
TARGET_FRACTION, WINDOW = 0.9, 4
COLUMNS = ["task", "method", "staleness", "correction", *FINAL, "mean kl", "mean ess",
           "time to target s", "Δ pass@1", "Δ pass@8", "Δ strategies"]


def arms(quick: bool) -> dict[str, dict]:
  """{arm label: overrides}: the synchronous arm, then k x correction."""
  ks, corrections = (QUICK_STALENESS, QUICK_CORRECTIONS) if quick else (STALENESS, CORRECTIONS)
  out = {SYNC: {}}
  for k in ks:
    for correction in corrections:
      out[f"k={k}, {correction}"] = {"rollout.max_staleness": k,
                                     "objective.is_correction": correction}
  return out


def run_task(task: str, *, quick: bool, seeds, shared: str, out: str) -> dict:
  prior = ex.task_prior(task, quick=quick, root=shared)
  runs = {}
  for method, config in METHODS.items():
    for label, overrides in arms(quick).items():
      runs[method, label] = ex.run_arm(
          ex.arm_name(f"{method} {label}"),
          lambda seed, o=overrides, c=config: ex.rl_arm_config(
              c, prior=prior, task=task, quick=quick,
              overrides={"optim.learning_rate": LEARNING_RATES[task], **o}),
          seeds=seeds, root=os.path.join(out, "runs", task))
  return {"runs": runs}


def running_pass1(workdir: str) -> tuple[np.ndarray, np.ndarray]:
  """(cumulative learner seconds, running mean of train pass@1 over WINDOW steps) per step."""
  rows = read_metrics(workdir)
  seconds = np.cumsum([r["step_time"] for r in rows])
  p = np.asarray([r["train_pass@1"] for r in rows])
  running = np.convolve(p, np.ones(WINDOW) / WINDOW, mode="full")[:len(p)]
  running[:WINDOW - 1] = np.nan
  return seconds, running


def time_to(workdir: str, target: float) -> float:
  """Learner seconds until the running train pass@1 first reaches `target` (NaN: never)."""
  seconds, running = running_pass1(workdir)
  hit = np.flatnonzero(running >= target)
  return float(seconds[hit[0]]) if hit.size else float("nan")


def target(sync_runs: dict) -> float:
  """TARGET_FRACTION x the synchronous arm's final running train pass@1 (seed mean)."""
  return TARGET_FRACTION * float(np.mean([running_pass1(w)[1][-1] for w in sync_runs.values()]))


def _time_cell(runs: dict, goal: float) -> str:
  times = [time_to(w, goal) for w in runs.values()]
  reached = [t for t in times if np.isfinite(t)]
  cell = ex.fmt(*ex.mean_ci(reached), digits=1) if reached else "never"
  return cell if len(reached) == len(times) else f"{cell} ({len(reached)}/{len(times)} seeds)"


def _delta(runs: dict, sync: dict, key: str) -> tuple[float, float]:
  return ex.paired_diff(runs, sync, lambda w: ex.final_eval(w)[key])


def table_rows(task: str, res: dict) -> list[dict]:
  rows = []
  for (method, label), runs in res["runs"].items():
    sync = res["runs"][method, SYNC]
    k, _, correction = label.partition(", ")
    row = {"task": task, "method": method, "staleness": "0" if label == SYNC else k[2:],
           "correction": correction or "(identity)",
           **{key: ex.over_seeds(runs, lambda w, key=key: ex.final_eval(w)[key])
              for key in FINAL},
           "mean kl": ex.over_seeds(runs, lambda w: ex.step_mean(w, "mismatch/kl"), digits=4),
           "mean ess": ex.over_seeds(runs, lambda w: ex.step_mean(w, "mismatch/ess")),
           "time to target s": _time_cell(runs, target(sync))}
    if label != SYNC:
      for column, key in (("Δ pass@1", "pass@1"), ("Δ pass@8", "pass@8"),
                          ("Δ strategies", "distinct_strategies")):
        row[column] = ex.fmt(*_delta(runs, sync, key))
    rows.append(row)
  return rows


def verdicts(task: str, res: dict, quick: bool) -> list[str]:
  """Per method: (1) at the largest k without a correction, staleness lowers pass@8 and the
  strategies found by more than pass@1 (paired: Δ exploration − Δ pass@1 < 0); (2) each
  correction at that k raises the strategies over no correction."""
  k = max(QUICK_STALENESS if quick else STALENESS)
  corrections = QUICK_CORRECTIONS if quick else CORRECTIONS
  lines = []
  for method in METHODS:
    sync, stale = res["runs"][method, SYNC], res["runs"][method, f"k={k}, none"]
    for key in ("pass@8", "distinct_strategies"):
      m, h = ex.paired_diff(stale, sync, lambda w, key=key: ex.final_eval(w)["pass@1"]
                            - ex.final_eval(w)[key])
      d1, d2 = _delta(stale, sync, "pass@1"), _delta(stale, sync, key)
      lines.append(ex.judge(
          f"[{task}, {method}] max_staleness {k} without a correction costs {key} more than "
          "pass@1", m, h, f"Δ pass@1 {ex.fmt(*d1)}, Δ {key} {ex.fmt(*d2)} (vs sync); "
          f"Δ pass@1 − Δ {key} {ex.fmt(m, h)}", ex.SUPPORT))
    for correction in corrections[1:]:
      fixed = res["runs"][method, f"k={k}, {correction}"]
      m, h = ex.paired_diff(fixed, stale, lambda w: ex.final_eval(w)["distinct_strategies"])
      m1, h1 = ex.paired_diff(fixed, stale, lambda w: ex.final_eval(w)["pass@8"])
      lines.append(ex.judge(
          f"[{task}, {method}] {correction} recovers strategies at max_staleness {k}", m, h,
          f"{correction} − none: strategies {ex.fmt(m, h)}, pass@8 {ex.fmt(m1, h1)}",
          ex.SUPPORT))
  return lines


def report(task: str, res: dict, quick: bool) -> ex.TaskReport:
  plots = {}
  for method in METHODS:
    plots[f"kl_{task}_{method}"] = {
        label: ex.curves(runs, "mismatch/kl") for (m, label), runs in res["runs"].items()
        if m == method and label != SYNC and label.endswith("none")}
    plots[f"pass1_{task}_{method}"] = {
        label: ex.curves(runs, "pass@1") for (m, label), runs in res["runs"].items()
        if m == method and (label == SYNC or label.endswith("none"))}
  return ex.TaskReport(table_rows(task, res), verdicts(task, res, quick), plots)


def main(argv=None) -> int:
  return ex.main_over_tasks(
      argv, doc=__doc__, name="staleness",
      title="Stale rollouts: does max_staleness cost exploration more than pass@1, and which "
            "correction recovers it?",
      columns=COLUMNS, run_task=run_task, report=report,
      scale_note=lambda quick: (f"GRPO and Poly-EPO at the {'quick' if quick else 'full'} RL "
                                "scale, learning rates "
                                + ", ".join(f"{t} {lr:g}" for t, lr in LEARNING_RATES.items())),
      legend="Final held-out metrics; mean kl / ess: step means of mismatch/kl (KL(μ ‖ π_old) "
             "per token, μ the sampling version) and mismatch/ess; time to target: the "
             f"learner's seconds until the {WINDOW}-step running train pass@1 reaches "
             f"{TARGET_FRACTION:g} x the synchronous arm's final value; Δ: paired difference "
             "with the synchronous arm. ± = 95% t-interval over seeds.")


if __name__ == "__main__":
  sys.exit(main())
