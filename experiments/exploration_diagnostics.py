"""Do better explorers branch earlier and cover more prompts? GRPO, Poly-EPO, the two-policy
mode, hindsight proposals and the Gibbs policy (RWR), with the exploration diagnostics of
every evaluation (explore_rl/eval/diagnostics.py; docs/algorithms.md, "Exploration
diagnostics").

  .venv/bin/python experiments/exploration_diagnostics.py            # full: 3 seeds
  .venv/bin/python experiments/exploration_diagnostics.py --quick    # smoke (tests)

Measured on a shared 2-core CPU (load average ~15): full 21 min (1246 s, 15 runs); quick
92 s in the test with a warm .jax_cache (XLA's persistent compilation cache), 287 s cold
(prior and compiles included). Finished runs are read back, not retrained.

Every arm starts from the same SFT prior on `partition` (full: the tiny preset after 600
steps, the prior the reproduction experiments share; quick: 60 steps) and draws the same
sample budget: 16 prompts x 8 responses per step (hindsight: 4 drafts + 4 proposals).
The table holds, at the final evaluation (held-out prompts x 8 samples, mean ± 95%
t-interval over seeds): pass@1, coverage (= pass@8), prompts solved by none / all,
distinct correct strategies and answers, the mean and first branching points, identical
pairs, and over the run's evaluations the mean per-prompt learning progress |Δ pass rate|.
The answer to the question is Spearman's rank correlation, over every (arm, seed) final
evaluation, of the branching point with coverage (negative: earlier branching, more
coverage). Writes OUT/table.md, OUT/table.csv and the curves OUT/<metric>.png.
"""
from __future__ import annotations

import os
import time

import numpy as np
from scipy import stats

from explore_rl import harness as ex
from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics

ARMS = {   # label: (config, overrides)
    "GRPO": ("grpo", {}),
    "Poly-EPO": ("polyepo", {}),
    "two policies (Poly-EPO explore)": ("explore_exploit", {}),
    "hindsight (IS)": ("hindsight", {}),
    "Gibbs RWR (λ=3)": ("gibbs_rwr", {}),
}
SCALES = {
    "quick": {"total_steps": 2, "eval_every": 1, "checkpoint_every": 2,
              "rollout.prompts_per_step": 4, "rollout.num_samples": 8,
              "eval.num_prompts": 4, "eval.num_samples": 8},
    "full": {"total_steps": 30, "eval_every": 5, "checkpoint_every": 30,
             "rollout.prompts_per_step": 16, "rollout.num_samples": 8,
             "eval.num_prompts": 64, "eval.num_samples": 8},
}
FINAL = ["pass@1", "coverage", "solved_by_none", "solved_by_all",
         "distinct_correct_strategies", "distinct_correct_answers", "branch_point_mean",
         "branch_first_mean", "branch_identical_frac"]
CURVES = ["coverage", "branch_point_mean", "progress_mean", "distinct_correct_strategies"]
HINDSIGHT_KEYS = ["hindsight_success_rate", "hindsight_draft_success_rate",
                  "hindsight_improved_frac", "hindsight_token_share",
                  "mismatch/is_weight_mean", "mismatch/truncated_frac"]


def arm_config(name: str, overrides: dict, *, prior: str, quick: bool):
  scale = SCALES["quick" if quick else "full"]
  config = load_config(name, {"init_from": prior, **scale, **overrides})
  if config.objective.aggregation == "seq-mean-token-sum-norm":
    config.objective.aggregation_kwargs.norm = config.max_response_len
  config.log_clusters = False
  return config


def mean_over_rows(workdir: str, key: str) -> float:
  """The mean of `key` over a run's metrics rows that hold it (NaN when none): the
  evaluations for eval keys, the steps for training keys."""
  values = [r[key] for r in read_metrics(workdir) if key in r]
  return float(np.mean(values)) if values else float("nan")


def verdict(rho: tuple[float, float]) -> str:
  """The answer to "do earlier branchers cover more?" from Spearman's (ρ, p)."""
  r, p = rho
  if not np.isfinite(r):
    return "undetermined (no spread in branching or coverage)."
  if p < 0.05:
    return ("yes: earlier branching goes with more coverage." if r < 0 else
            "no: earlier branching goes with less coverage.")
  return f"no evidence either way at this scale (|ρ| = {abs(r):.2f}, p = {p:.2f})."


def main(argv=None) -> int:
  args, seeds = ex.experiment_args(
      argv, doc=__doc__, out=os.path.join("results", "exploration_diagnostics"),
      quick_help="smoke scale (2 steps, 1 seed)", seeds=(1, 3),
      extra=lambda parser: parser.add_argument("--arms", default=",".join(ARMS),
                                               help="comma-separated labels"))
  t0 = time.perf_counter()
  prior = ex.sft_prior("partition", quick=args.quick, root=args.shared,
                       overrides=None if args.quick else {"model.preset": "tiny",
                                                          "total_steps": 600})
  labels = [a for a in args.arms.split(",") if a]
  runs = {}
  for label in labels:
    name, overrides = ARMS[label]
    runs[label] = ex.run_arm(
        name, lambda seed, n=name, o=overrides: arm_config(n, o, prior=prior, quick=args.quick),
        seeds=seeds, root=os.path.join(args.out, "runs"))

  rows, points = [], []
  for label, arm in runs.items():
    row = {"method": label, **ex.summarize(arm, FINAL)}
    row["learning progress |Δ|"] = ex.fmt(*ex.mean_ci(
        mean_over_rows(w, "progress_abs_mean") for w in arm.values()))
    row["hindsight success"] = ex.fmt(*ex.mean_ci(
        mean_over_rows(w, "hindsight_success_rate") for w in arm.values()))
    rows.append(row)
    for w in arm.values():
      last = ex.final_eval(w)
      points.append((last.get("branch_point_mean", np.nan), last.get("branch_first_mean", np.nan),
                     last["coverage"]))
  pts = np.asarray(points, np.float64)
  ok = np.isfinite(pts).all(axis=1)
  rho_mean = rho_first = (float("nan"), float("nan"))
  if ok.sum() >= 3 and np.ptp(pts[ok, 0]) > 0 and np.ptp(pts[ok, 2]) > 0:
    rho_mean = stats.spearmanr(pts[ok, 0], pts[ok, 2])
    rho_first = stats.spearmanr(pts[ok, 1], pts[ok, 2]) if np.ptp(pts[ok, 1]) > 0 else \
        rho_first
  columns = ["method", *FINAL, "learning progress |Δ|", "hindsight success"]
  wall = time.perf_counter() - t0
  notes = (
      f"Seeds {seeds}; scale {'quick' if args.quick else 'full'} "
      f"({SCALES['quick' if args.quick else 'full']}); SFT prior {prior}; wall time of this "
      f"invocation {wall:.0f} s (runs already finished are read back).\n\n"
      f"Spearman rank correlation over the {int(ok.sum())} (arm, seed) final "
      f"evaluations: branch_point_mean vs coverage ρ = {rho_mean[0]:.2f} (p = "
      f"{rho_mean[1]:.2f}); branch_first_mean vs coverage ρ = {rho_first[0]:.2f} (p = "
      f"{rho_first[1]:.2f}). Negative ρ: runs that branch earlier cover more prompts. "
      f"Verdict: {verdict(rho_mean)}\n\n"
      "Branching points are token positions (0 = the first response token differs); "
      "coverage = pass@8; learning progress = mean over evaluations of the mean absolute "
      "change of a held-out prompt's pass rate since the previous evaluation; hindsight "
      "success = the proposals' success rate, mean over steps.")
  for label, arm in runs.items():
    if ARMS[label][0] == "hindsight":
      stats_ = ", ".join(f"{k} {ex.fmt(*ex.mean_ci(mean_over_rows(w, k) for w in arm.values()))}"
                         for k in HINDSIGHT_KEYS)
      notes += f"\n\n{label}, means over steps (95% CI over seeds): {stats_}."
  plots = {key: {label: ex.curves(arm, key) for label, arm in runs.items()} for key in CURVES}
  path = ex.write_results(args.out, rows, columns, title="Exploration diagnostics: who "
                          "branches earlier and covers more?", notes=notes, plots=plots)
  print(open(path).read())
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
