"""Design-selected vs randomly selected training responses (docs/algorithms.md, "Two policies,
dependent sampling, designed multisets"): does training on the N responses the multiset design
picks, instead of N random ones, change pass@k or the number of distinct strategies?

Both arms run `configs/design_select.py` from the same SFT prior per seed and task: GRPO
trained on N = 8 of M = 16 candidate responses per prompt, kept by the multiset design over the
responses' MiniLM text embeddings (the embedding judge's vectors) with the policy's mean token
log-prob as r̂
(`selector="design"`), or uniformly at random (`selector="random"`, the control). Same decode
cost and the same number of trained responses. Reported per task: final held-out pass@1,
pass@8 and distinct successful strategies among 8 samples, training-time distinct successful
strategies among the N kept responses (`train_distinct_strategies`, mean over steps), and the
mean r̂ of the kept rows vs all candidates (`design_select_estimate_*`). ± = 95% t-interval
over seeds; Δ = paired difference (design − random) over seeds (same prior, problem stream and
held-out set).

  .venv/bin/python experiments/design_select.py            # full: 3 seeds, 2 tasks
  .venv/bin/python experiments/design_select.py --quick    # smoke (the test suite)

Full mode: the full-mode tiny SFT priors shared with the other experiments
(`harness.PRIOR_OVERRIDES`), the RL_SCALES "full" scale (40 steps of 16 prompts x 8 kept of
16 candidates, 64 held-out prompts x 8 samples), partition and grid_paths, 3 seeds. Quick mode:
the quick prior, 2 RL steps of 4 prompts, 8 held-out prompts, 2 seeds: a smoke test, no claim.

Measured (2-core CPU shared with a benchmark and other jobs, load average 3-6, full-mode priors
already trained): `.venv/bin/python experiments/design_select.py --tasks partition` 780 s wall,
then `.venv/bin/python experiments/design_select.py` (partition read back, grid_paths trained)
677 s; the committed table was rewritten by a last invocation that only read the finished runs
(hence its "wall time 2 s"). Outcome (results/design_select/table.md): no held-out difference on
either task (paired Δ pass@8 0.000 ± 0.039 on partition, +0.021 ± 0.045 on grid_paths; Δ
distinct@8 −0.12 ± 0.19 and +0.15 ± 1.15): NOT SUPPORTED. What the design does to the batch is
the opposite of its intent: it keeps FEWER distinct successful strategies among the 8 trained
responses than random selection (−0.30 ± 0.25 per prompt on partition, −0.55 ± 0.35 on
grid_paths: REJECTED, significantly), because with the log-prob estimate r̂ the gaps Δ̂ are
smallest near the apparent best and the design spends its picks there (mean r̂ of the kept rows
−0.307 vs −0.334 for all candidates on partition, −0.270 vs −0.336 on grid_paths).
"""
from __future__ import annotations

import os
import sys

from explore_rl import harness as ex

ARMS = {"design": "design", "random": "random"}  # label: sampler_kwargs.selector
COLUMNS = ["task", "selector", "pass@1", "pass@8", "distinct@8", "train distinct/prompt",
           "r̂ kept", "r̂ candidates", "Δ pass@8 vs random", "Δ distinct@8 vs random"]
QUICK_STEPS = 2


def arm_config(selector: str, *, prior: str, task: str, quick: bool):
  steps = {"total_steps": QUICK_STEPS, "eval_every": QUICK_STEPS,
           "checkpoint_every": QUICK_STEPS} if quick else {}
  return ex.rl_arm_config("design_select", prior=prior, task=task, quick=quick, overrides={
      **steps, "rollout.sampler_kwargs.selector": selector})


def run_task(task: str, *, quick: bool, seeds, shared: str, out: str) -> dict:
  prior = ex.task_prior(task, quick=quick, root=shared)
  return {label: ex.run_arm(f"design_select_{label}", lambda _, s=selector: arm_config(
      s, prior=prior, task=task, quick=quick), seeds=seeds, root=os.path.join(out, "runs", task))
      for label, selector in ARMS.items()}


def stat(values, digits: int = 3) -> str:
  return ex.fmt(*ex.mean_ci(values), digits=digits)


def table_rows(task: str, runs: dict) -> list[dict]:
  out = []
  for label in ARMS:
    r = runs[label]
    finals = [ex.final_eval(w) for w in r.values()]
    row = {"task": task, "selector": label,
           "pass@1": stat(f["pass@1"] for f in finals),
           "pass@8": stat(f["pass@8"] for f in finals),
           "distinct@8": stat((f["distinct_strategies"] for f in finals), 2),
           "train distinct/prompt": stat((ex.step_mean(w, "train_distinct_strategies")
                                          for w in r.values()), 2),
           "r̂ kept": stat((ex.step_mean(w, "design_select_estimate_kept")
                            for w in r.values())),
           "r̂ candidates": stat((ex.step_mean(w, "design_select_estimate_candidates")
                                  for w in r.values()))}
    if label != "random":
      for key, col in (("pass@8", "Δ pass@8 vs random"),
                       ("distinct_strategies", "Δ distinct@8 vs random")):
        row[col] = ex.fmt(*ex.paired_diff(r, runs["random"],
                                          lambda w, k=key: ex.final_eval(w)[k]))
    out.append(row)
  return out


def verdicts(task: str, runs: dict) -> list[str]:
  lines = []
  for key, name in (("pass@8", "pass@8"), ("distinct_strategies", "distinct strategies@8"),
                    ("pass@1", "pass@1")):
    m, h = ex.paired_diff(runs["design"], runs["random"], lambda w, k=key: ex.final_eval(w)[k])
    claim = f"[{task}] design selection raises {name} over random selection"
    nums = f"paired Δ {ex.fmt(m, h)}"
    lines.append(ex.judge(claim, m, h, nums, ex.SUPPORT))
  # What the design acts on: the kept training responses themselves.
  m, h = ex.paired_diff(runs["design"], runs["random"],
                        lambda w: ex.step_mean(w, "train_distinct_strategies"))
  lines.append(ex.judge(f"[{task}] design selection keeps more distinct successful strategies "
                        "among the trained responses", m, h,
                        f"paired Δ {ex.fmt(m, h, 2)} per prompt (mean over steps)", ex.SUPPORT))
  return lines


def report(task: str, runs: dict, quick: bool) -> ex.TaskReport:
  plots = {f"distinct_{task}": {l: ex.curves(r, "distinct_strategies") for l, r in runs.items()},
           f"train_distinct_{task}": {l: ex.curves(r, "train_distinct_strategies")
                                      for l, r in runs.items()}}
  return ex.TaskReport(table_rows(task, runs), verdicts(task, runs), plots)


def main(argv=None) -> int:
  return ex.main_over_tasks(
      argv, doc=__doc__, name="design_select",
      title="design_select vs random selection of the trained responses", columns=COLUMNS,
      run_task=run_task, report=report,
      scale_note=lambda quick: (f"scale quick ({QUICK_STEPS} RL steps of 4 prompts x 8 kept of "
                                "16 candidates; 8 held-out prompts x 8 samples)" if quick else
                                f"scale full ({ex.RL_SCALES['full']}; 8 kept of 16 candidates)"),
      legend="r̂ = the policy's mean token log-prob of a response (the design's estimate); "
             "train distinct/prompt = distinct successful strategies among the N kept "
             "responses, mean over steps. ± = 95% t-interval over seeds; Δ paired over seeds.")


if __name__ == "__main__":
  sys.exit(main())
