"""Two policies and dependent sampling on the demo task (partition); docs/algorithms.md, "Two
policies, dependent sampling".

The conjecture: train with two policies, an explore
policy that collects the data and an exploit policy trained from it and deployed; the
exploit policy keeps single-policy pass@1 while the explore policy's pass@k and distinct
strategies go up. Arms, all from the same SFT prior per seed, at the same sample budget
(16 prompts x 8 samples per step, 40 steps; one sampling pass per step in every arm):

  GRPO                        `configs/grpo.py`, one policy (shared with polyepo.py)
  Poly-EPO                    `configs/polyepo.py`, one policy
  explore Poly-EPO → exploit GRPO   `configs/explore_exploit.py`: separate parameter sets;
                              the explore policy draws and is trained by Poly-EPO, the
                              exploit policy by GRPO from its samples with the config's
                              importance correction (seq_tis, cap 2)
  explore pass@k → exploit GRPO     the same with the explore policy trained by analytic
                              pass@k advantages (arXiv 2508.10751, k = 4)
and, for one objective (Poly-EPO), three samplers:
  Poly-EPO, sequential        `configs/sequential.py` (sample k sees samples < k)
  Poly-EPO, sketch            `configs/sketch.py` (SESA, arXiv 2510.15502; 3-token sketches)

Measured: exploit pass@1 (the policy that ships: `pass@1` of each run's held-out eval) and
explore pass@8 / distinct successful strategies among 8 samples (the explore policy's for
two-policy arms, drawn as in training; the one policy's otherwise) over training; the
importance-weight statistics of the two-policy arms. The samplers are compared at equal
FLOPs (docs/algorithms.md, "FLOPs": a sequential sample prefills the whole history, so it
costs several independent ones): (a) from one fixed policy (the SFT prior) on 64 held-out
prompts, each sampler drawing whole groups of 8 per prompt within the costliest sampler's
FLOPs for one group: distinct successful strategies, pass@(samples drawn), generated
tokens per prompt; (b) in training, each run read at its last evaluation within the
smallest final FLOPs of the three arms (pass@1/8, distinct@8; the rollouts'
`train_distinct_strategies` averaged up to that step). ± = 95% t-interval over seeds.

  .venv/bin/python experiments/two_policies.py            # full: 3 seeds
  .venv/bin/python experiments/two_policies.py --samplers # only the sampler comparison
  .venv/bin/python experiments/two_policies.py --quick    # smoke (the test suite)

Hardware: 2-core CPU shared with other jobs (load average 15-20 during the runs).
Wall time: quick 92 s with its SFT prior and compile cache warm, 270-310 s cold on the
loaded machine (the test suite's case: it trains the quick prior); full 1587 s on the
2-core Intel Xeon at load 5-7 (3 seeds x 5 arms, 40 steps each, beside the shared GRPO
runs; the shared tiny SFT prior already trained; the prior-sampler rows read from their
cache). `--samplers`
(the sampler comparison at equal FLOPs, 3 seeds x 3 arms + the prior's draws): 1692 s on
the 2-core Intel Xeon (KVM guest) at load average 15-19.

Measured (full mode, results/two_policies/table.md; 3 seeds, paired 95% CIs):
  exploit pass@1   GRPO 0.370 ± 0.040, Poly-EPO 0.364 ± 0.061, explore Poly-EPO → exploit
                   GRPO 0.361 ± 0.089 (Δ vs GRPO −0.009 ± 0.049), explore pass@k → exploit
                   GRPO 0.372 ± 0.006 (Δ +0.002 ± 0.042)
  explore pass@8   GRPO 0.906 ± 0.000; two policies 0.964 ± 0.059 (Δ +0.057 ± 0.059) and
                   0.953 ± 0.103 (Δ +0.047 ± 0.103)
  distinct@8       GRPO 1.87 ± 0.27; explore 2.14 ± 0.20 (Δ +0.27 ± 0.38) and 2.02 ± 0.26
  mismatch         seq_tis: per-token KL(μ ‖ π_old) 0.070 / 0.066, ESS 0.74 / 0.73 of the
                   sequences, 4.0% / 4.4% truncated at C = 2 (the earlier token_tis run:
                   token ESS 0.97, 0.3% truncated; exploit pass@1 Δ −0.031 ± 0.115)
  samplers         at equal FLOPs (results/two_policies/samplers/table.md): a sequential group
                   of 8 costs ~17 independent groups (0.70 vs 0.04 GFLOPs per prompt: it
                   prefills each sample's whole history), a sketch group ~7. From the prior
                   (64 prompts) distinct successful strategies per prompt: independent
                   4.93 ± 0.69 (133 samples), sequential 0.41 ± 0.06 (8), sketch 1.83 ± 0.52
                   (16). Trained, read within the smallest final FLOPs (~131 GFLOPs:
                   independent at step 37 ± 7, sequential 10, sketch 15): pass@8 0.938 /
                   0.938 / 0.922, distinct@8 2.03 ± 0.37 / 1.91 ± 0.12 / 1.92 ± 0.16 (n.s.)
Reading: the seed's conjecture (exploit pass@1 kept, explore pass@k up) is NOT supported
here. Exploit pass@1 is not distinguishable from one-policy GRPO, but its intervals are
wide (±0.1: one seed's exploit fell to 0.30) and the point estimates are 0.03-0.05 lower,
so "kept" is not shown either; explore pass@8 and distinct strategies are at most a
small, non-significant gain (the pass@k explorer's +0.021 ± 0.022 is the closest). On this
task GRPO itself barely collapses at 40 steps from this prior (pass@8 0.93, 1.95 strategies),
which leaves the explorer little to add. Dependent sampling hurts with this prior: it was
fine-tuned on plain prompts only, so a context holding earlier samples is out of
distribution and later samples mostly fail (sequential pass@8 from the prior 0.43 vs 0.95);
sketches, which keep expansions in the plain context, lose less; at equal FLOPs the gap
widens (sequential 0.41 vs independent 4.93 distinct strategies from the prior). A fair test
of the statistical-efficiency argument needs a prior trained to read such contexts (SESA
trains its sketch-conditioned prompts).
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from explore_rl import harness as ex
from explore_rl.metrics_log import read_metrics

TASK = "partition"
PASSK_EXPLORE = {  # configs/passk_analytic.py's objective, for the explore policy
    "advantage": "passk_analytic", "advantage_kwargs": {"k": 4},
    "aggregation": "token-mean", "aggregation_kwargs": {}, "loss_kwargs": {}}
ARMS = {  # label: (config, overrides)
    "GRPO": ("grpo", {}),
    "Poly-EPO": ("polyepo", {}),
    "explore Poly-EPO → exploit GRPO": ("explore_exploit", {}),
    "explore pass@k → exploit GRPO": ("explore_exploit", {
        f"explore.objective.{k}": v for k, v in PASSK_EXPLORE.items()}),
    "Poly-EPO, sequential": ("sequential", {}),
    "Poly-EPO, sketch": ("sketch", {}),
}
SHARED_ARMS = ("GRPO",)                       # also polyepo.py's and entropy_mechanism.py's
POLICY_ARMS = ("GRPO", "Poly-EPO", "explore Poly-EPO → exploit GRPO",
               "explore pass@k → exploit GRPO")
SAMPLER_ARMS = {"independent": "Poly-EPO", "sequential": "Poly-EPO, sequential",
                "sketch": "Poly-EPO, sketch"}
SAMPLER_KWARGS = {"independent": {}, "sequential": {}, "sketch": {"sketch_len": 3}}
COLUMNS = ["arm", "exploit pass@1", "exploit pass@8", "explore pass@8", "explore distinct@8",
           "Δ exploit pass@1 vs GRPO", "Δ explore pass@8 vs GRPO", "mismatch/kl",
           "mismatch/ess", "mismatch/truncated_frac"]
SAMPLER_COLUMNS = ["sampler", "prior: MFLOPs/prompt", "prior: samples/prompt",
                   "prior: distinct/prompt", "prior: tokens/prompt", "prior: pass@samples",
                   "training: GFLOPs read", "training: step read", "training: distinct/prompt",
                   "trained: pass@1", "trained: pass@8", "trained: distinct@8"]


def two_policy(label: str) -> bool:
  return ARMS[label][0] == "explore_exploit"


def explore_key(label: str, key: str) -> str:
  """The explore policy's metric: `explore/<key>` for two-policy arms, else the policy's."""
  return f"explore/{key}" if two_policy(label) else key


def arm_config(label: str, *, prior: str, quick: bool):
  method, overrides = ARMS[label]
  overrides = dict(overrides)
  if quick:
    overrides.update({"total_steps": 2, "eval_every": 2, "checkpoint_every": 2})
  config = ex.rl_arm_config(method, prior=prior, task=TASK, quick=quick, overrides=overrides)
  if two_policy(label) and config.explore.objective.aggregation == "seq-mean-token-sum-norm":
    config.explore.objective.aggregation_kwargs.norm = config.max_response_len
  return config


def run_arms(labels, *, quick: bool, seeds, shared: str, out: str) -> tuple[str, dict]:
  """The arms `labels` for every seed: seed by seed (so an interrupted full run has whole
  seeds), this experiment's own arms first, the shared GRPO baseline (maybe being trained
  by another experiment) last."""
  prior = ex.task_prior(TASK, quick=quick, root=shared)
  runs = {label: {} for label in labels}
  order = [(s, label) for shared_arm in (False, True) for s in seeds for label in labels
           if (label in SHARED_ARMS) == shared_arm]
  for seed, label in order:
    root = ex.shared_rl_root(shared, TASK, quick) if label in SHARED_ARMS and not quick \
        else os.path.join(out, "runs")
    runs[label].update(ex.run_arm(ex.arm_name(label), lambda _, lab=label: arm_config(
        lab, prior=prior, quick=quick), seeds=[seed], root=root))
  return prior, runs


def sampler_draws(prior: str, sampler: str, seed: int, *, num_prompts: int, groups: int,
                  out: str) -> dict:
  """`groups` groups of 8 samples per held-out prompt drawn by `sampler` from the prior
  (keys from `seed`; cached): distinct successful strategies over all of a prompt's
  samples, generated tokens, pass@(8·groups) and the sampler's FLOPs, per prompt."""
  path = os.path.join(out, "sampler_diversity",
                      f"{sampler}_seed{seed}_p{num_prompts}_g{groups}.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  import jax
  from explore_rl.eval.evaluate import held_out_problems
  from explore_rl.sampling import Policies, make_sampler
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.sampling.rollout import sample_and_score
  from explore_rl.tasks import DEGENERATE, get_task
  from explore_rl.training.policy_loader import load_policy
  with open(os.path.join(prior, "config.json")) as f:
    run = json.load(f)
  task = get_task(TASK)
  problems = held_out_problems(task, seed=seed, num_prompts=num_prompts,
                               difficulty=ex.TASK_SETTINGS[TASK]["difficulty"])
  policy = load_policy(prior)
  s = make_sampler(sampler, sampling=SamplingConfig(temperature=1.0,
                                                    max_new_tokens=run["max_response_len"]),
                   prompt_len=run["max_prompt_len"], task=task, **SAMPLER_KWARGS[sampler])
  found = [set() for _ in problems]
  tokens = flops = 0.0
  solved = np.zeros(len(problems), bool)
  for g in range(groups):
    scored = sample_and_score(s, Policies(policy), task, problems, num_samples=8,
                              rng=jax.random.fold_in(jax.random.key(seed), g))
    for b, (sigs, ok) in enumerate(zip(scored.signatures, scored.correct)):
      found[b] |= {sig for sig, c in zip(sigs, ok) if c and sig != DEGENERATE}
    solved |= scored.correct.any(axis=1)
    tokens += float(scored.host.mask.sum())
    flops += float(scored.host.flops)
  out_row = {"distinct": float(np.mean([len(x) for x in found])),
             "tokens": tokens / len(problems), "pass": float(solved.mean()),
             "flops": flops / len(problems), "samples": 8 * groups}
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(out_row, f)
  return out_row


def equal_flops_draws(prior: str, seed: int, *, num_prompts: int, out: str) -> dict:
  """{sampler: `sampler_draws`} at one FLOP budget per prompt: the costliest sampler's for
  one group of 8; each other sampler draws as many whole groups of 8 as fit in it."""
  one = {s: sampler_draws(prior, s, seed, num_prompts=num_prompts, groups=1, out=out)
         for s in SAMPLER_ARMS}
  budget = max(d["flops"] for d in one.values())
  return {s: sampler_draws(prior, s, seed, num_prompts=num_prompts,
                           groups=max(1, int(budget // d["flops"])), out=out)
          for s, d in one.items()}


def stat(values, digits: int = 3) -> str:
  return ex.fmt(*ex.mean_ci(values), digits=digits)


def paired(runs_a: dict, runs_b: dict, key_a: str, key_b: str) -> tuple[float, float]:
  """(mean, CI) over common seeds of final-eval metric a − b."""
  seeds = sorted(set(runs_a) & set(runs_b))
  return ex.mean_ci(ex.final_eval(runs_a[s])[key_a] - ex.final_eval(runs_b[s])[key_b]
                    for s in seeds)


def policy_rows(runs: dict) -> list[dict]:
  rows = []
  for label in POLICY_ARMS:
    r = runs[label]
    finals = [ex.final_eval(w) for w in r.values()]
    row = {"arm": label,
           "exploit pass@1": stat(f["pass@1"] for f in finals),
           "exploit pass@8": stat(f["pass@8"] for f in finals),
           "explore pass@8": stat(f[explore_key(label, "pass@8")] for f in finals),
           "explore distinct@8": stat(f[explore_key(label, "distinct_strategies")]
                                      for f in finals)}
    if label != "GRPO":
      row["Δ exploit pass@1 vs GRPO"] = ex.fmt(*paired(r, runs["GRPO"], "pass@1", "pass@1"))
      row["Δ explore pass@8 vs GRPO"] = ex.fmt(*paired(
          r, runs["GRPO"], explore_key(label, "pass@8"), "pass@8"))
    if two_policy(label):
      for key in ("mismatch/kl", "mismatch/ess", "mismatch/truncated_frac"):
        row[key] = ex.over_seeds(r, lambda w, k=key: ex.step_mean(w, k))
    rows.append(row)
  return rows


def sampler_rows(runs: dict, prior: str, seeds, *, quick: bool, out: str) -> list[dict]:
  """The sampler comparison at equal FLOPs: from the prior (`equal_flops_draws`), and in
  training, each run read at the last evaluation within the smallest final FLOPs count of
  the three arms (`harness.at_flops`)."""
  num_prompts = 8 if quick else 64
  draws = [equal_flops_draws(prior, s, num_prompts=num_prompts, out=out) for s in seeds]
  budget = ex.flops_budget(runs[label] for label in SAMPLER_ARMS.values())
  rows = []
  for sampler, label in SAMPLER_ARMS.items():
    d = [x[sampler] for x in draws]
    r = runs[label]
    at = {seed: ex.at_flops(w, budget) for seed, w in r.items()}
    at = {seed: row for seed, row in at.items() if row}   # none: the first eval is past it
    upto = lambda seed, key: np.mean([x[key] for x in read_metrics(r[seed])
                                      if x["step"] <= at[seed]["step"]])
    rows.append({
        "sampler": sampler,
        "prior: MFLOPs/prompt": stat((x["flops"] / 1e6 for x in d), 1),
        "prior: samples/prompt": stat((x["samples"] for x in d), 0),
        "prior: distinct/prompt": stat(x["distinct"] for x in d),
        "prior: tokens/prompt": stat((x["tokens"] for x in d), 1),
        "prior: pass@samples": stat(x["pass"] for x in d),
        "training: GFLOPs read": stat((ex.total_flops(a) / 1e9 for a in at.values()), 2),
        "training: step read": stat((a["step"] for a in at.values()), 0),
        "training: distinct/prompt": stat(upto(s, "train_distinct_strategies") for s in at),
        "trained: pass@1": stat(a["pass@1"] for a in at.values()),
        "trained: pass@8": stat(a["pass@8"] for a in at.values()),
        "trained: distinct@8": stat(a["distinct_strategies"] for a in at.values())})
  return rows


def judge(claim: str, m: float, h: float, nums: str, *, non_inferior: bool = False) -> str:
  """SUPPORTED / NOT SUPPORTED / REJECTED from a paired 95% interval (m ± h)."""
  if not np.isfinite(h):
    return f"{claim}: NOT TESTABLE (one seed): {nums}"
  if non_inferior:                     # "kept": the interval excludes a loss of > 0.02
    verdict = "SUPPORTED" if m - h > -0.02 else (
        "REJECTED" if m + h < 0 else "NOT TESTABLE (interval too wide)")
  else:
    verdict = "SUPPORTED" if m - h > 0 else (
        "REJECTED (significantly the opposite)" if m + h < 0 else
        "NOT SUPPORTED (no significant difference)")
  return f"{claim}: {verdict}: {nums}"


def verdicts(runs: dict) -> list[str]:
  lines = []
  for label in ("explore Poly-EPO → exploit GRPO", "explore pass@k → exploit GRPO"):
    m, h = paired(runs[label], runs["GRPO"], "pass@1", "pass@1")
    lines.append(judge(f"[{label}] exploit pass@1 is kept vs one-policy GRPO "
                       "(non-inferior, margin 0.02)", m, h, f"Δ {ex.fmt(m, h)}",
                       non_inferior=True))
    m, h = paired(runs[label], runs["GRPO"], "explore/pass@8", "pass@8")
    lines.append(judge(f"[{label}] explore pass@8 is above one-policy GRPO's pass@8", m, h,
                       f"Δ {ex.fmt(m, h)}"))
    m, h = paired(runs[label], runs["GRPO"], "explore/distinct_strategies",
                  "distinct_strategies")
    lines.append(judge(f"[{label}] explore distinct strategies above GRPO's", m, h,
                       f"Δ {ex.fmt(m, h)}"))
    m, h = paired(runs[label], runs["Poly-EPO"], "pass@1", "pass@1")
    lines.append(judge(f"[{label}] exploit pass@1 above one-policy Poly-EPO's", m, h,
                       f"Δ {ex.fmt(m, h)}"))
  return lines


def sampler_verdicts(samplers: list[dict]) -> list[str]:
  lines, by = [], {r["sampler"]: r for r in samplers}
  for sampler in ("sequential", "sketch"):
    lines.append(f"[{sampler} vs independent, equal FLOPs] distinct successful strategies per "
                 f"prompt from the prior: {by[sampler]['prior: distinct/prompt']} vs "
                 f"{by['independent']['prior: distinct/prompt']} "
                 f"({by[sampler]['prior: samples/prompt']} vs "
                 f"{by['independent']['prior: samples/prompt']} samples per prompt); trained, "
                 f"read at {by[sampler]['training: GFLOPs read']} vs "
                 f"{by['independent']['training: GFLOPs read']} GFLOPs: pass@8 "
                 f"{by[sampler]['trained: pass@8']} vs {by['independent']['trained: pass@8']}, "
                 f"distinct@8 {by[sampler]['trained: distinct@8']} vs "
                 f"{by['independent']['trained: distinct@8']}")
  return lines


def main(argv=None) -> int:
  args, seeds = ex.experiment_args(
      argv, doc=__doc__, seeds=(2, 3), out=os.path.join("results", "two_policies"),
      quick_help="smoke scale (tiny prior, 2 steps)",
      extra=lambda parser: parser.add_argument(
          "--samplers", action="store_true",
          help="only the sampler comparison (its three arms; OUT/samplers/table.md)"))
  t0 = time.perf_counter()
  labels = list(SAMPLER_ARMS.values()) if args.samplers else list(ARMS)
  prior, runs = run_arms(labels, quick=args.quick, seeds=seeds, shared=args.shared,
                         out=args.out)
  # the quick prior barely solves the task
  smoke = (lambda v: [f"SMOKE (quick scale, not evidence) {x}" for x in v]) if args.quick \
      else list
  scale = dict(ex.RL_SCALES["quick" if args.quick else "full"])
  if args.quick:
    scale.update(total_steps=2, eval_every=2)
  setting = f"Seeds {seeds}; task {TASK}; scale {scale}; prior {prior}"
  samplers = sampler_rows(runs, prior, seeds, quick=args.quick, out=args.out)
  lines = smoke(sampler_verdicts(samplers))
  wall = time.perf_counter() - t0
  ex.write_results(
      os.path.join(args.out, "samplers"), samplers, SAMPLER_COLUMNS,
      title="Dependent sampling at equal FLOPs (Poly-EPO objective, partition)",
      plots={"train_distinct_by_sampler": {s: ex.curves(runs[l], "train_distinct_strategies")
                                           for s, l in SAMPLER_ARMS.items()}},
      notes="\n".join(["## Verdicts", ""] + [f"- {v}" for v in lines] + [
          "", f"{setting}; wall time {wall:.0f} s.",
          "FLOPs: `flops_sample` + `flops_train` (docs/algorithms.md, \"FLOPs\"). Prior rows: "
          "the SFT prior drawing whole groups of 8 samples for each held-out prompt with each "
          "sampler, as many as fit in the costliest sampler's FLOPs for one group "
          "(`RolloutBatch.flops`; seed = held-out set and key). Trained rows: each run read "
          "at its last evaluation within the smallest final FLOPs of the three arms; "
          "training distinct = the rollouts' mean up to that step. ± = 95% t-interval over "
          "seeds."]))
  if not args.samplers:
    policy_lines = smoke(verdicts(runs))
    lines = policy_lines + lines
    plots = {
        "exploit_pass1": {l: ex.curves(runs[l], "pass@1") for l in POLICY_ARMS},
        "explore_pass8": {l: ex.curves(runs[l], explore_key(l, "pass@8")) for l in POLICY_ARMS},
        "explore_distinct": {l: ex.curves(runs[l], explore_key(l, "distinct_strategies"))
                             for l in POLICY_ARMS}}
    wall = time.perf_counter() - t0
    notes = "\n".join(["## Verdicts", ""] + [f"- {v}" for v in policy_lines] + [
        "", f"{setting}; wall time {wall:.0f} s.",
        "exploit = the policy evaluated and shipped (for one-policy arms, the one policy); "
        "explore = the policy that draws the rollouts, evaluated as it draws in training "
        "(two-policy arms: `explore/*` metrics); final held-out eval, 8 samples per prompt. "
        "Δ = paired difference over seeds (same prior, problems, held-out set). mismatch/*: the "
        "exploit update's importance diagnostics (objectives/importance.py), means over steps. "
        "The sampler comparison: samplers/table.md. ± = 95% t-interval over seeds."])
    ex.write_results(args.out, policy_rows(runs), COLUMNS,
                     title="Two policies and dependent sampling (partition)", notes=notes,
                     plots=plots)
  print("\n".join(lines))
  print(f"wall time {wall:.0f} s; wrote {args.out}")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
