# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Compare methods over runs and seeds
#
# Loads several methods' runs, each over several seeds (`METHOD/seed<k>` workdirs, as
# `explore_rl.harness.run_arm` and the scripts in `experiments/` write them), and
# plots reward, entropy and held-out pass@1 with 95% confidence bands over seeds, the
# final pass@k curves, a fit of the entropy–performance law R = −a·e^H + b (Cui et al.,
# arXiv 2505.22617; docs/algorithms.md) per method, and sampled responses grouped by
# strategy cluster.
#
# Set `EXPLORE_RL_COMPARE` to a directory of method folders (e.g.
# `results/polyepo/runs/partition`). Without it the notebook trains its own small runs
# (GRPO and Poly-EPO, 2 seeds, 3 steps of the tiny model) in a temporary directory,
# starting from `EXPLORE_RL_RUN` when set (the test suite's tiny run) or else from the
# quick SFT prior.

# %%
import json
import os
import tempfile

import matplotlib
matplotlib.use("Agg")
import jax
import matplotlib.pyplot as plt
import numpy as np

from explore_rl import harness as ex
from explore_rl.eval.entropy_law import fit_entropy_law
from explore_rl.eval.evaluate import held_out_problems
from explore_rl.sampling import Policies
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import sample_and_score
from explore_rl.sampling.samplers import IndependentSampler
from explore_rl.tasks import get_task
from explore_rl.training.policy_loader import load_policy

ROOT = os.environ.get("EXPLORE_RL_COMPARE", "")
if ROOT:
  RUNS = {m: {int(s[4:]): os.path.join(ROOT, m, s)
              for s in sorted(os.listdir(os.path.join(ROOT, m))) if s.startswith("seed")}
          for m in sorted(os.listdir(ROOT)) if os.path.isdir(os.path.join(ROOT, m))}
else:
  scratch = tempfile.mkdtemp(prefix="compare_methods_")
  ex.enable_compile_cache(scratch)
  prior = os.environ.get("EXPLORE_RL_RUN") or ex.task_prior("partition", quick=True, root=scratch)
  small = {"total_steps": 3, "eval_every": 1, "checkpoint_every": 3}
  RUNS = {label: ex.run_arm(method, lambda seed, m=method: ex.rl_arm_config(
      m, prior=prior, task="partition", quick=True, overrides=small), seeds=[0, 1], root=scratch)
      for label, method in (("GRPO", "grpo"), ("Poly-EPO", "polyepo"))}
RUNS = {m: r for m, r in RUNS.items() if r and all(ex.eval_rows(w) for w in r.values())}
for method, runs in RUNS.items():
  print(f"{method}: seeds {sorted(runs)}")

# %% [markdown]
# ## Training curves (mean ± 95% t-interval over seeds)

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
for ax, key in zip(axes, ["reward_mean", "entropy", "pass@1"]):
  for method, runs in RUNS.items():
    steps, mean, half = ex.curves(runs, key)
    ax.plot(steps, mean, marker="o", ms=3, label=method)
    ax.fill_between(steps, mean - np.nan_to_num(half), mean + np.nan_to_num(half), alpha=0.2)
  ax.set_title(key + (" (held-out)" if key == "pass@1" else ""))
  ax.set_xlabel("step")
axes[0].legend(fontsize=7)
fig.tight_layout()

# %% [markdown]
# ## Final evaluation: pass@k over k, strategies, entropy

# %%
summary = {m: ex.summarize(r, ["pass@1", "pass@8", "distinct_strategies", "eval_entropy"])
           for m, r in RUNS.items()}
for method, row in summary.items():
  print(method, row)
fig, ax = plt.subplots(figsize=(5, 3.2))
for method, runs in RUNS.items():
  finals = [ex.final_eval(w) for w in runs.values()]
  ks = sorted(int(k[5:]) for k in finals[0] if k.startswith("pass@") and "_" not in k)
  stats = np.array([ex.mean_ci(f[f"pass@{k}"] for f in finals) for k in ks])
  ax.errorbar(ks, stats[:, 0], np.nan_to_num(stats[:, 1]), marker="o", capsize=3, label=method)
ax.set_xscale("log", base=2)
ax.set_xlabel("k")
ax.set_ylabel("pass@k (held-out)")
ax.legend(fontsize=7)

# %% [markdown]
# ## Entropy–performance law, pooled over each method's seeds
#
# One (H, R) point per evaluation: H the training-batch entropy at that step, R the
# held-out pass@1. The fit needs at least 3 points with varying R; a method whose
# points are degenerate (e.g. all pass@1 equal in a tiny smoke run) is reported as such.

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
for method, runs in RUNS.items():
  points = [(r["entropy"], r["pass@1"]) for w in runs.values() for r in ex.eval_rows(w)]
  h, r = map(np.asarray, zip(*points))
  ax.scatter(h, r, s=12, label=method)
  try:
    fit = fit_entropy_law(h, r)
  except ValueError as err:
    print(f"{method}: no fit ({err})")
    continue
  grid = np.linspace(h.min(), h.max(), 50)
  ax.plot(grid, fit.predict(grid))
  print(f"{method}: a={fit.a:.3f} b={fit.b:.3f} R²={fit.r2:.2f} ceiling −a+b={fit.ceiling:.3f} "
        f"reached {r.max():.3f} ({fit.num_points} points)")
ax.set_xlabel("entropy H")
ax.set_ylabel("pass@1 R")
ax.legend(fontsize=7)

# %% [markdown]
# ## Sampled responses by strategy cluster (final policy of seed 0, 3 held-out prompts)

# %%
for method, runs in RUNS.items():
  workdir = runs[min(runs)]
  with open(os.path.join(workdir, "config.json")) as f:
    run = json.load(f)
  task = get_task(run["task"], **run.get("task_kwargs", {}))
  problems = held_out_problems(task, seed=run["seed"], num_prompts=3,
                               difficulty=run["difficulty"])
  sampler = IndependentSampler(sampling=SamplingConfig(
      temperature=1.0, max_new_tokens=run["max_response_len"]), prompt_len=run["max_prompt_len"])
  out = sample_and_score(sampler, Policies(load_policy(workdir)), task, problems,
                         num_samples=8, rng=jax.random.key(0))
  print(f"=== {method}")
  for b, problem in enumerate(out.problems):
    print(f"  {problem.prompt}")
    clusters = {}
    for j, signature in enumerate(out.signatures[b]):
      clusters.setdefault(str(signature), []).append(
          (out.responses[b * 8 + j], bool(out.correct[b, j])))
    for signature, members in sorted(clusters.items(), key=lambda kv: -len(kv[1])):
      print(f"    [{len(members)}x, correct={members[0][1]}] strategy {signature}: "
            f"{members[0][0]!r}")
