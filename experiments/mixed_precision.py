"""Mixed precision (`model_overrides.matmul_dtype = "bfloat16"`, models/dense.py): does
rounding the projections' and the lm head's matmul inputs to bf16 change what GRPO learns?

bf16 matmuls run the RL update 1.42-1.56x faster on this CPU's AMX units at the `small`
preset (benchmarks/README.md, fourth speed pass), but they round every projection's
inputs at 8 mantissa bits, so the behaviour and reference log-probs, the importance ratios
and the gradients all move. This experiment asks whether that moves the outcome.

Arms, both `configs/grpo.py` from the same SFT prior per task at the reproduction scale
(`harness.RL_SCALES`):
- fp32, the shared GRPO baseline of the other experiments;
- the same run with bf16 matmul inputs (fp32 weights, activations, log-probs, optimizer).

Held-out pass@1, pass@8, distinct strategies and entropy at the end. Also the step means of
the first-epoch importance ratio's KL estimate and clip fraction, where rounding noise
between the scoring and update passes would show. ± = 95% t-interval over seeds;
comparisons are paired by seed (same prior, problem stream and held-out set). The claims
are the risks of bf16: that it lowers pass@1, pass@8, the strategies found or the entropy.
"NOT SUPPORTED (no significant difference)" is the outcome that leaves bf16 safe at this
scale, within the interval printed. Speed is not compared here: the arms' step times come
from different sessions, and the tiny preset's matmuls are too small for AMX. The
benchmarks measure speed.

  .venv/bin/python experiments/mixed_precision.py            # full: 3 seeds, 2 tasks
  .venv/bin/python experiments/mixed_precision.py --quick    # smoke (the test suite)

Hardware: 2-core CPU, quiet (load ~1.5). Full mode, measured: `.venv/bin/python
experiments/mixed_precision.py`, 72 s wall (6 bf16 runs of 40 steps; the fp32 baseline and
the tiny priors read back from results/_shared). Outcome (results/mixed_precision/table.md):
no risk is supported on either task.
- pass@1, fp32 − bf16 paired difference: +0.010 ± 0.058 (partition), −0.020 ± 0.053
  (grid_paths);
- pass@8: +0.010 ± 0.059, +0.021 ± 0.081;
- distinct strategies: +0.11 ± 0.26, +0.11 ± 0.32;
- entropy: −0.009 ± 0.056, +0.018 ± 0.035;
- the first-epoch approx_kl: 0.0004 vs 0.0003 (partition).
At 3 seeds the intervals are wide (±0.06 in pass@1), so a difference smaller than that would
go unseen. Quick mode: a smoke test, no claim decided.
"""
from __future__ import annotations

import os
import sys

from explore_rl import harness as ex

FP32, BF16 = "GRPO", "GRPO, bf16 matmuls"
ARMS = {FP32: {}, BF16: {"model_overrides.matmul_dtype": "bfloat16"}}
SHARED_ARMS = (FP32,)   # the baseline of polyepo.py and entropy_mechanism.py
FINAL = ("pass@1", "pass@8", "distinct_strategies", "eval_entropy")
STEP = ("approx_kl", "clip_frac")
COLUMNS = ["task", "method", *FINAL, *[f"mean {k}" for k in STEP], "update_norm"]


def run_task(task: str, *, quick: bool, seeds, shared: str, out: str) -> dict:
  prior = ex.task_prior(task, quick=quick, root=shared)
  runs = {}
  for label, overrides in ARMS.items():
    root = ex.shared_rl_root(shared, task, quick) if label in SHARED_ARMS else \
        os.path.join(out, "runs", task)
    runs[label] = ex.run_arm(ex.arm_name(label), lambda seed, o=overrides: ex.rl_arm_config(
        "grpo", prior=prior, task=task, quick=quick, overrides=o), seeds=seeds, root=root)
  return {"runs": runs}


def table_rows(task: str, res: dict) -> list[dict]:
  return [{"task": task, "method": label,
           **{k: ex.over_seeds(runs, lambda w, k=k: ex.final_eval(w)[k]) for k in FINAL},
           **{f"mean {k}": ex.over_seeds(runs, lambda w, k=k: ex.step_mean(w, k), digits=4)
              for k in STEP},
           "update_norm": ex.over_seeds(runs, lambda w: ex.step_mean(w, "update_norm"),
                                        digits=4)}
          for label, runs in res["runs"].items()]


def verdicts(task: str, res: dict) -> list[str]:
  fp32, bf16 = res["runs"][FP32], res["runs"][BF16]
  lines = []
  for key in FINAL:
    m, h = ex.paired_diff(fp32, bf16, lambda w, k=key: ex.final_eval(w)[k])
    lines.append(ex.judge(f"[{task}] bf16 matmuls lower the final {key}", m, h,
                          f"fp32 − bf16 paired difference {ex.fmt(m, h)}", ex.SUPPORT))
  return lines


def report(task: str, res: dict, quick: bool) -> ex.TaskReport:
  series = {label: ex.curves(runs, "pass@1") for label, runs in res["runs"].items()}
  return ex.TaskReport(table_rows(task, res), verdicts(task, res),
                       {f"pass1_{task}": series})


def main(argv=None) -> int:
  return ex.main_over_tasks(
      argv, doc=__doc__, name="mixed_precision",
      title="bf16 matmul inputs vs fp32: does mixed precision change what GRPO learns?",
      columns=COLUMNS, run_task=run_task, report=report,
      scale_note=lambda quick: f"GRPO at the {'quick' if quick else 'full'} RL scale",
      legend="Final held-out metrics of each run; mean approx_kl / clip_frac: means over "
             "the run's steps (first-epoch importance ratios). ± = 95% t-interval over "
             "seeds; verdicts pair the arms by seed.")


if __name__ == "__main__":
  sys.exit(main())
