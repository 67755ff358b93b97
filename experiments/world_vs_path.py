"""World vs path sampling at a fixed FLOP budget (docs/algorithms.md "World and path
sampling"): how should rollouts per step be split between problems (world sampling, B
prompts per step) and samples per problem (path sampling, N), and does an adaptive
curriculum (`tasks/curriculum.py: adaptive`, pass rate kept in [0.1, 0.9]) beat a
uniform one?

Arms: GRPO (`configs/grpo.py`) from the same SFT prior per task, B x N = 64 rollouts per
step split as (32, 2), (16, 4), (8, 8), (4, 16), each with the uniform and the adaptive
curriculum; everything else fixed. FLOPs are the trainer's counters, cumulative in every
metrics row (docs/algorithms.md, "FLOPs"): `flops_sample` what the sampler ran (one
prefill per prompt, every decode step of the B·N rows, attention over the cache),
`flops_train` the update's forward + backward (3x a forward). The
budget is the smallest total (sample + train) FLOPs any run reached at its last step;
every run is compared at its last evaluation within that budget (evaluations are every 5
steps, so the compared FLOPs differ by up to one eval interval: the table gives them; the
SFT prior's FLOPs are not counted), and the isoperformance
table gives the FLOPs each arm needs to first reach a held-out pass@1 target
(the prior's plus 0.02 and 0.05). ± = 95% t-interval over seeds, comparisons paired by seed.

  .venv/bin/python experiments/world_vs_path.py            # full: 3 seeds, 2 tasks
  .venv/bin/python experiments/world_vs_path.py --quick    # smoke (the test suite)

Hardware: 2-core Intel Xeon (KVM guest) shared with other jobs (load average 15-19).
Full mode, measured: `.venv/bin/python experiments/world_vs_path.py` 1703 s wall (48 runs of
40 steps; both tiny full-mode priors already trained in the shared directory).
Outcome (results/world_vs_path/table.md), with every pass counted (docs/algorithms.md,
"FLOPs": each prompt prefilled once, so at 64 rollouts per step world sampling's sampler
costs more, B=32 x N=2 14.8 vs B=4 x N=16 9.8 GFLOPs over 40 steps on partition, 9.7 vs
4.2 on grid_paths; the update, 55.5 / 52.4, is the same for every split): at a budget of
63.9 GFLOPs (partition) and 56.6 GFLOPs (grid_paths) no split of 64 rollouts per step
differs significantly from another: path sampling (B=4 x N=16) vs world sampling (B=32 x
N=2) pass@1 -0.013 ± 0.053 and +0.007 ± 0.062 on partition (uniform, adaptive curriculum),
-0.059 ± 0.122 and -0.026 ± 0.048 on grid_paths: NOT SUPPORTED either way, an
isoperformance plateau at this scale (40 steps of a 0.1M-parameter model move pass@1 by
~0.02 on partition: most arms never reach prior+0.05). The adaptive curriculum does not
beat the uniform one at any split (all n.s.; at B=32 x N=2 on grid_paths +0.011 ± 0.066:
the significant -0.036 ± 0.032 found under the old count, 2·params per token with
prompts counted N times, is not reproduced).
Quick mode (the two extreme splits, halved; 6 steps): a smoke test, no claim decided.

"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

from explore_rl import harness as ex

ROLLOUTS = 64
SPLITS = ((32, 2), (16, 4), (8, 8), (4, 16))
CURRICULA = ("uniform", "adaptive")
TARGETS = (0.02, 0.05)
COLUMNS = ["task", "B x N", "curriculum", "GFLOPs at budget", "pass@1", "pass@8",
           "distinct_strategies", "update_norm", *[f"GFLOPs to prior+{t:g}" for t in TARGETS]]


def label(b: int, n: int, curriculum: str) -> str:
  return f"B={b} x N={n}, {curriculum}"


def splits(quick: bool) -> list[tuple[int, int]]:
  """The (B, N) pairs run: SPLITS; in the quick mode (a smoke test) only the two extremes,
  with B halved (32 rollouts a step)."""
  return [(max(1, b // 2), n) for b, n in (SPLITS[0], SPLITS[-1])] if quick else list(SPLITS)


def run_task(task: str, *, quick: bool, seeds, shared: str, out: str) -> dict:
  prior = ex.task_prior(task, quick=quick, root=shared)
  scale = ex.RL_SCALES["quick" if quick else "full"]
  runs = {}
  for b, n in splits(quick):
    for curriculum in CURRICULA:
      overrides = {"rollout.prompts_per_step": b, "rollout.num_samples": n,
                   "curriculum": curriculum}
      runs[(b, n, curriculum)] = ex.run_arm(
          f"b{b}_n{n}_{curriculum}",
          lambda seed, o=overrides: ex.rl_arm_config("grpo", prior=prior, task=task,
                                                     quick=quick, overrides=o),
          seeds=seeds, root=os.path.join(out, "runs", task))
  prior_eval = ex.wide_eval(prior, num_samples=scale["eval.num_samples"],
                            num_prompts=scale["eval.num_prompts"])
  return {"prior": prior, "runs": runs, "prior_eval": prior_eval}


def flops_to(workdir: str, target: float) -> float:
  """The cumulative FLOPs at the first evaluation with pass@1 >= target (inf if never)."""
  for r in ex.eval_rows(workdir):
    if r["pass@1"] >= target:
      return ex.total_flops(r)
  return math.inf


def budget_of(res: dict) -> float:
  return ex.flops_budget(res["runs"].values())


def gflops_fmt(values) -> str:
  """'mean ± CI' in GFLOPs, or 'not reached (k of n seeds)' when some seed never got there."""
  values = list(values)
  finite = [v for v in values if np.isfinite(v)]
  if len(finite) < len(values):
    return f"not reached ({len(values) - len(finite)} of {len(values)} seeds)"
  return ex.fmt(*ex.mean_ci(v / 1e9 for v in values), digits=2)


def table_rows(task: str, res: dict) -> list[dict]:
  budget, p0 = budget_of(res), res["prior_eval"]["pass@1"]
  rows = []
  for (b, n, curriculum), runs in res["runs"].items():
    finals = [ex.at_flops(w, budget) for w in runs.values()]
    rows.append({
        "task": task, "B x N": f"{b} x {n}", "curriculum": curriculum,
        "GFLOPs at budget": ex.fmt(*ex.mean_ci(ex.total_flops(f) / 1e9 for f in finals if f),
                                   digits=2),
        **{k: ex.fmt(*ex.mean_ci(f.get(k) for f in finals))
           for k in ("pass@1", "pass@8", "distinct_strategies")},
        "update_norm": ex.over_seeds(runs, lambda w: ex.step_mean(w, "update_norm"), digits=4),
        **{f"GFLOPs to prior+{t:g}": gflops_fmt(flops_to(w, p0 + t) for w in runs.values())
           for t in TARGETS}})
  return rows


def verdicts(task: str, res: dict) -> list[str]:
  budget, runs, lines = budget_of(res), res["runs"], []
  score = lambda w: ex.at_flops(w, budget).get("pass@1", math.nan)
  means = {k: ex.mean_ci(score(w) for w in r.values())[0] for k, r in runs.items()}
  best = max(means, key=lambda k: -math.inf if not np.isfinite(means[k]) else means[k])
  lines.append(f"[{task}] best split at {budget / 1e9:.2f} GFLOPs: "
               f"{label(*best)} (pass@1 {means[best]:.3f})")
  (bw, nw), (bp, np_) = max((b, n) for b, n, _ in runs), min((b, n) for b, n, _ in runs)
  for curriculum in CURRICULA:
    m, h = ex.paired_diff(runs[(bp, np_, curriculum)], runs[(bw, nw, curriculum)], score)
    claim = f"[{task}] path sampling (B={bp} x N={np_}) beats world sampling (B={bw} x " \
            f"N={nw}) at a fixed budget ({curriculum} curriculum)"
    lines.append(ex.judge(claim, m, h, f"pass@1 paired difference {ex.fmt(m, h)}", ex.SUPPORT))
  for b, n in sorted({(b, n) for b, n, _ in runs}, reverse=True):
    m, h = ex.paired_diff(runs[(b, n, "adaptive")], runs[(b, n, "uniform")], score)
    lines.append(ex.judge(f"[{task}] the adaptive curriculum beats the uniform one at B={b} x "
                          f"N={n}", m, h, f"pass@1 paired difference {ex.fmt(m, h)}", ex.SUPPORT))
  return lines


def report(task: str, res: dict, quick: bool) -> ex.TaskReport:
  series = {}
  for key, runs in res["runs"].items():
    per_seed = [ex.eval_rows(w) for w in runs.values()]
    points = min(len(p) for p in per_seed)
    x = [np.mean([ex.total_flops(p[i]) for p in per_seed]) / 1e9 for i in range(points)]
    stats = [ex.mean_ci(p[i]["pass@1"] for p in per_seed) for i in range(points)]
    series[label(*key)] = (np.asarray(x), np.asarray([s[0] for s in stats]),
                           np.asarray([s[1] for s in stats]))
  stem = f"pass1_vs_gflops_{task}"
  return ex.TaskReport(table_rows(task, res), verdicts(task, res), {stem: series},
                       {stem: "GFLOPs (sample + train)"})


def main(argv=None) -> int:
  return ex.main_over_tasks(
      argv, doc=__doc__, name="world_vs_path",
      title="World vs path sampling at a fixed FLOP budget",
      columns=COLUMNS, run_task=run_task, report=report,
      scale_note=lambda quick: f"{ROLLOUTS // (2 if quick else 1)} rollouts per step; scale "
                               f"{'quick' if quick else 'full'}",
      legend="FLOPs: flops_sample (every pass the sampler ran) + flops_train (every pass of "
             "the update), docs/algorithms.md \"FLOPs\". Metrics at the last evaluation "
             "within the common budget; GFLOPs to prior+t = FLOPs at the first evaluation "
             "whose pass@1 reaches the prior's + t. ± = 95% t-interval over seeds.")


if __name__ == "__main__":
  sys.exit(main())
