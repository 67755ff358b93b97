"""Offline DPO vs HyPO vs online RL (HyPO, Song et al., arXiv 2406.01462; docs/algorithms.md,
"Preference optimisation"): does the online KL term lift offline DPO, and does online RL beat
both, as the coverage argument says when the offline data cover the test distribution poorly?

The offline data: the SFT prior's own samples on `NUM_PROMPTS` prompts of the task (a stream
disjoint from training and held-out problems), 8 each, scored by the verifier, up to 2
(correct, incorrect) pairs per prompt (explore_rl/training/preference_data.py), made once per
task from the seed-0 prior. Arms, each from that prior, at the harness' RL scale and the
same learning rate (GRPO's):

  offline DPO   configs/dpo.py: 32 dataset pairs per step, nothing sampled in training
  HyPO          configs/hypo.py: the same pairs + 0.1 · KL(π ‖ π_ref) on 16 x 8 online samples
  online DPO    configs/online_dpo.py: pairs from each step's own 16 x 8 verified samples
  GRPO          configs/grpo.py: online RL on the same samples

Evaluation: the final policy, 16 samples on each of 64 held-out prompts: pass@1, pass@4,
pass@16, distinct correct strategies among the 16 (the prior's row: seed 0's 64 prompts).
± = 95% t-interval over seeds; differences are paired by seed (same prior, data, problem
stream and held-out set).

  .venv/bin/python experiments/preference.py            # full: 3 seeds, partition + grid_paths
  .venv/bin/python experiments/preference.py --quick    # smoke (the test suite)

Hardware: 2-core Intel Xeon CPU (KVM guest), shared with other jobs (load average 15-22 during the run).
Full mode, measured: `nice -n 5 .venv/bin/python experiments/preference.py`, 887 s wall for
both tasks (4 arms x 3 seeds x 2 tasks = 24 runs of 40 steps; the tiny-preset priors were
trained before, the grid_paths one inside this run). Offline data: 852 pairs from 512 prompts
(partition), 728 (grid_paths). Outcome (results/preference/table.md):
- partition: offline DPO lowers pass@1 below the prior (0.259 ± 0.094 vs 0.336) and loses
  strategies (2.15 vs 2.81 of 16); HyPO keeps both (0.351 ± 0.095, 2.96): HyPO − DPO at pass@1
  +0.091 ± 0.034, REPRODUCED; at pass@16 +0.052 ± 0.059 (n.s.). GRPO − DPO +0.108 ± 0.089 and
  online DPO − DPO +0.095 ± 0.079 at pass@1.
- grid_paths: HyPO − DPO +0.022 ± 0.140 at pass@1, +0.073 ± 0.081 at pass@16 (n.s.); HyPO
  keeps the prior's strategies (5.03 of 16 vs the prior's 5.19; offline DPO 3.19, GRPO 2.63);
  GRPO − DPO +0.116 ± 0.071 at pass@1.
Quick mode (1 seed, grid_paths, the test): 70 s CPU; its wall time follows the machine's load
(4 min at load 22).
"""
from __future__ import annotations

import json
import os
import sys

from explore_rl import harness as ex
from explore_rl.training.preference_data import make_preference_data

ARMS = {"offline DPO": "dpo", "HyPO (offline DPO + online KL)": "hypo",
        "online DPO": "online_dpo", "GRPO (online RL)": "grpo"}
PRIOR = "SFT prior"
NUM_PROMPTS = {"quick": 64, "full": 512}
EVAL_SAMPLES = 16
# Over the harness' RL scale: quick is two steps and one evaluation (the suite's smoke run);
# full evaluates every 10 of its 40 steps (16 samples a prompt cost twice the usual 8).
SCALE = {"quick": {"total_steps": 2, "eval_every": 2}, "full": {"eval_every": 10}}
K_EVAL = (1, 4, 16)
COLUMNS = ["task", "method", *[f"pass@{k}" for k in K_EVAL], "distinct_strategies",
           "eval_entropy", "training_data"]


def scale(quick: bool) -> dict:
  mode = "quick" if quick else "full"
  return {**ex.RL_SCALES[mode], **SCALE[mode], "eval.num_samples": EVAL_SAMPLES}


def arm_config(method: str, *, prior: str, task: str, quick: bool, data: str):
  overrides = {**scale(quick), "optim.learning_rate": ex.load_config("grpo").optim.learning_rate}
  if method in ("dpo", "hypo"):
    overrides["preference.data"] = data
  return ex.rl_arm_config(method, prior=prior, task=task, quick=quick, overrides=overrides)


def run_task(task: str, *, quick: bool, seeds, shared: str, out: str) -> dict:
  prior = ex.task_prior(task, quick=quick, root=shared)
  root = os.path.join(out, "runs", task)
  data = os.path.join(root, "pairs.jsonl")
  stats = make_preference_data(prior, data, num_prompts=NUM_PROMPTS["quick" if quick else "full"])
  runs = {label: ex.run_arm(method, lambda seed, m=method: arm_config(
      m, prior=prior, task=task, quick=quick, data=data), seeds=seeds, root=root)
          for label, method in ARMS.items()}
  return {"prior": prior, "runs": runs, "data": stats}


def value(key: str):
  return lambda w: ex.final_eval(w)[key]


def table_rows(task: str, res: dict) -> list[dict]:
  keys = [f"pass@{k}" for k in K_EVAL] + ["distinct_strategies", "eval_entropy"]
  prior = ex.wide_eval(res["prior"], num_samples=EVAL_SAMPLES,
                       num_prompts=scale(res["quick"])["eval.num_prompts"])
  rows = [{"task": task, "method": PRIOR, **{k: f"{prior[k]:.3f}" for k in keys},
           "training_data": f"made the offline data: {res['data']['pairs']} pairs"}]
  for label, runs in res["runs"].items():
    data = [f"{res['data']['pairs']} offline pairs"] if ARMS[label] in ("dpo", "hypo") else []
    online = ex.mean_ci(online_samples(w) for w in runs.values())[0]
    data += [f"{online:.0f} online samples"] if online else []
    rows.append({"task": task, "method": label,
                 **{k: ex.over_seeds(runs, value(k)) for k in keys},
                 "training_data": " + ".join(data)})
  return rows


def online_samples(workdir: str) -> float:
  """Responses the policy sampled in training (prompts x samples on every step that
  sampled; held-out evaluation not counted)."""
  with open(os.path.join(workdir, "config.json")) as f:
    rollout = json.load(f)["rollout"]
  steps = [r for r in ex.read_metrics(workdir) if "reward_mean" in r]
  return float(len(steps) * rollout["prompts_per_step"] * rollout["num_samples"])


def verdicts(task: str, res: dict) -> list[str]:
  runs, lines = res["runs"], []
  dpo, hypo = runs["offline DPO"], runs["HyPO (offline DPO + online KL)"]
  grpo, online = runs["GRPO (online RL)"], runs["online DPO"]
  for key in ("pass@1", "pass@16"):
    m, h = ex.paired_diff(hypo, dpo, value(key))
    lines.append(ex.judge(f"[{task}] HyPO beats offline DPO at {key} (the seed's claim)", m, h,
                          f"HyPO − DPO {ex.fmt(m, h)}"))
  for label, arm in (("GRPO (online RL)", grpo), ("online DPO", online)):
    m, h = ex.paired_diff(arm, dpo, value("pass@1"))
    lines.append(ex.judge(f"[{task}] {label} beats offline DPO at pass@1", m, h,
                          f"{label} − DPO {ex.fmt(m, h)}", words=ex.SUPPORT))
  return lines


def report(task: str, res: dict, quick: bool) -> ex.TaskReport:
  res["quick"] = quick
  plots = {f"pass1_{task}": {label: ex.curves(r, "pass@1") for label, r in res["runs"].items()}}
  return ex.TaskReport(table_rows(task, res), verdicts(task, res), plots)


def main(argv=None) -> int:
  return ex.main_over_tasks(
      argv, doc=__doc__, name="preference",
      title="Offline DPO vs HyPO vs online RL (arXiv 2406.01462)", columns=COLUMNS,
      run_task=run_task, report=report,
      scale_note=lambda quick: f"scale {'quick' if quick else 'full'} {scale(quick)}",
      legend=f"pass@k, distinct_strategies and eval_entropy of the final policy with "
             f"{EVAL_SAMPLES} samples per held-out prompt; training_data: the offline pairs "
             "and the responses the policy sampled during training (offline DPO: none). ± = "
             "95% t-interval over seeds.")


if __name__ == "__main__":
  sys.exit(main())
