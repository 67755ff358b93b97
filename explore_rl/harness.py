"""The shared harness of `experiments/`: runs reused from their workdirs, seeds, 95% CIs,
tables and plots.

  prior = sft_prior("partition", seed=0, quick=args.quick)        # shared by experiments
  runs = run_arm("grpo", lambda seed: load_config("grpo", {"init_from": prior}),
                 seeds=[0, 1, 2], root=f"{out}/runs")             # {seed: workdir}
  rows = [{"method": "GRPO", **summarize(runs, ["pass@1", "pass@8"])}]
  write_results(out, rows, ["method", "pass@1", "pass@8"], title=..., notes=...)

A run that two experiments need (the SFT prior, a GRPO baseline) is trained once: a
workdir whose metrics already reach `total_steps` is read, not retrained, and an
interrupted one resumes. Confidence intervals are over seeds (Student's t, 95%),
reported as "mean ± half-width"; `mean_ci` also serves intervals over prompts.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import time
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from explore_rl import compile_cache
from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics

SHARED_ROOT = os.path.join("results", "_shared")
# The two task families of the reproduction experiments (different strategy structures:
# multisets of parts vs lattice paths around obstacles), with the lengths each needs.
TASK_SETTINGS = {
    "partition": {"difficulty": 0.5},
    "grid_paths": {"difficulty": 0.5, "max_prompt_len": 28, "max_response_len": 10},
}
# The full-mode SFT priors of those experiments: the tiny preset (0.1M parameters), so that
# 3 seeds x 2 tasks x every arm fit in 30 minutes of a 2-core CPU. Measured (seed 0, 128
# held-out prompts x 8 samples, 2-core CPU): partition pass@1 0.37, pass@8 0.97, 2.1
# distinct strategies, entropy 0.33 after 600 steps (11 min on a loaded machine; the small
# preset's prior: 0.40 / 0.96 / 2.25 / 0.28); grid_paths 0.54 / 0.97 / 3.5 / 0.43 after 400
# steps (4 min).
PRIOR_OVERRIDES = {"partition": {"model.preset": "tiny", "total_steps": 600},
                   "grid_paths": {"model.preset": "tiny", "total_steps": 400}}
# Two-sided 95% Student-t critical values by degrees of freedom (1.96 beyond 30).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df: int) -> float:
  """The two-sided 95% Student-t quantile for `df` degrees of freedom (conservative between
  tabulated values)."""
  if df < 1:
    return math.nan
  known = [d for d in _T95 if d <= df]
  return _T95[max(known)] if df <= 30 else 1.96


def mean_ci(values: Iterable[float]) -> tuple[float, float]:
  """(mean, half-width of the 95% t-interval); half-width NaN for a single value."""
  x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
  if x.size == 0:
    return math.nan, math.nan
  if x.size == 1:
    return float(x[0]), math.nan
  return float(x.mean()), float(t95(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def fmt(mean: float, half: float, digits: int = 3) -> str:
  """'0.412 ± 0.031' (no interval for one seed)."""
  if not np.isfinite(mean):
    return "n/a"
  return f"{mean:.{digits}f}" if not np.isfinite(half) else \
      f"{mean:.{digits}f} ± {half:.{digits}f}"


def paired_diff(a: Mapping[int, str], b: Mapping[int, str],
                fn: Callable[[str], float]) -> tuple[float, float]:
  """(mean, 95% half-width) over the seeds both arms ran of fn(a[seed]) − fn(b[seed]):
  arms with the same seed share the prior, the problem stream and the held-out set."""
  return mean_ci(fn(a[s]) - fn(b[s]) for s in sorted(set(a) & set(b)))


# Verdict words: (significantly positive, significantly negative, no significant difference).
REPRODUCTION = ("REPRODUCED", "NOT REPRODUCED (the opposite, significantly)",
                "NOT REPRODUCED (no significant difference)")
SUPPORT = ("SUPPORTED", "REJECTED (the opposite, significantly)",
           "NOT SUPPORTED (no significant difference)")


def judge(claim: str, m: float, h: float, nums: str, words=REPRODUCTION) -> str:
  """"claim: VERDICT: nums" from a 95% interval m ± h of an effect that the claim says is
  positive: the interval above 0, below 0, or across it; NOT TESTABLE without an interval
  (one seed, or no measurement), and when every seed gave the same nonzero difference: a
  zero-width interval is zero sample variance (coarse metrics at few seeds, e.g. pass@16
  of 32 prompts equal at two seeds), not certainty."""
  if not np.isfinite(h):
    return f"{claim}: NOT TESTABLE (one seed, or nothing measured): {nums}"
  if h < 1e-12 and m != 0:   # float round-off aside
    return (f"{claim}: NOT TESTABLE (every seed gave the same difference: no spread to size "
            f"an interval from): {nums}")
  verdict = words[0] if m - h > 0 else words[1] if m + h < 0 else words[2]
  return f"{claim}: {verdict}: {nums}"


def enable_compile_cache(root: str = SHARED_ROOT) -> None:
  """XLA's persistent compilation cache under ROOT/jax_cache (or $EXPLORE_RL_JAX_CACHE;
  see `explore_rl.compile_cache`), so later processes reuse what earlier ones compiled.
  Within a process, runs with equal hyper-parameters already share one compiled update
  (`training.state.make_optimizer` is memoised)."""
  compile_cache.enable(default=os.path.join(root, "jax_cache"))


# -- runs -------------------------------------------------------------------------------
def finished(workdir: str, total_steps: int) -> bool:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return False
  rows = read_metrics(workdir, strict=False)
  return bool(rows) and rows[-1]["step"] >= total_steps


def train(config, workdir: str, *, poll_s: float = 10.0) -> list[dict]:
  """Trains `config` in `workdir` unless it already finished there; returns its metrics rows.

  A workdir another process is training (a shared run two experiments started together)
  is waited for, then read or resumed. A run that a SIGINT or SIGTERM stopped (saved, so
  that the same command resumes it) stops the experiment too: its half-trained metrics
  must not enter a table as a finished seed's.
  """
  from explore_rl.errors import UserError
  while not finished(workdir, config.total_steps):
    from explore_rl.training.trainers import TRAINERS
    try:
      TRAINERS.get(config.get("trainer", "rl"))(config, workdir, progress=False)
    except UserError as e:
      if "in use by another run" not in str(e):
        raise
      time.sleep(poll_s)
      continue
    if not finished(workdir, config.total_steps):
      raise SystemExit(f"stopped before step {config.total_steps} of {workdir} (its last "
                       "checkpoint is saved): run the same command to resume")
  return read_metrics(workdir)


def sft_prior(task: str = "partition", *, seed: int = 0, quick: bool = False,
              difficulty: float | None = None, root: str = SHARED_ROOT,
              overrides: Mapping | None = None) -> str:
  """The workdir of an SFT prior on `task` (trained once, shared by every experiment).

  Full: `configs/sft.py` (small preset, 400 steps), as `make demo`. Quick: the tiny
  preset for 60 steps, enough for varied rewards in smoke runs.
  """
  config = load_config("sft:tiny" if quick else "sft")
  config.task, config.seed = task, seed
  if difficulty is not None:
    config.difficulty = difficulty
  if quick:
    config.total_steps, config.eval_every, config.checkpoint_every = 60, 60, 60
    config.batch_size, config.optim.learning_rate, config.optim.warmup_steps = 16, 5e-3, 0
  for key, value in (overrides or {}).items():
    node, *path = [config, *key.split(".")]
    for part in path[:-1]:
      node = node[part]
    node[path[-1]] = value
  name = f"{task}-d{config.difficulty:g}-{config.model.preset}-{config.total_steps}-seed{seed}"
  workdir = os.path.join(root, "sft", name)
  train(config, workdir)
  return workdir


# The RL scale of the reproduction experiments: quick (smoke, the test suite) and full.
RL_SCALES = {
    "quick": {"total_steps": 6, "eval_every": 2, "rollout.prompts_per_step": 4,
              "rollout.num_samples": 8, "eval.num_prompts": 8, "eval.num_samples": 8},
    "full": {"total_steps": 40, "eval_every": 5, "rollout.prompts_per_step": 16,
             "rollout.num_samples": 8, "eval.num_prompts": 64, "eval.num_samples": 8},
}


def rl_arm_config(method: str, *, prior: str, task: str, quick: bool,
                  overrides: Mapping | None = None):
  """`configs/<method>.py` from `prior` on `task` (`TASK_SETTINGS`) at the `RL_SCALES`
  scale, then `overrides` (dotted keys). A Dr. GRPO-style constant normaliser follows the
  task's max_response_len, as the configs set it from theirs."""
  scale = dict(RL_SCALES["quick" if quick else "full"])
  config = load_config(method, {"init_from": prior, "task": task, **TASK_SETTINGS[task],
                                **scale, "checkpoint_every": scale["total_steps"],
                                **(overrides or {})})
  if config.objective.aggregation == "seq-mean-token-sum-norm" and \
      "objective.aggregation_kwargs.norm" not in (overrides or {}):
    config.objective.aggregation_kwargs.norm = config.max_response_len
  return config


def task_prior(task: str, *, quick: bool, root: str = SHARED_ROOT) -> str:
  """`sft_prior` on `task` with its `TASK_SETTINGS` (shared by every experiment)."""
  settings = dict(TASK_SETTINGS[task])
  difficulty = settings.pop("difficulty")
  return sft_prior(task, quick=quick, difficulty=difficulty, root=root,
                   overrides={**settings, **({} if quick else PRIOR_OVERRIDES[task])})


def shared_rl_root(root: str, task: str, quick: bool) -> str:
  """Where arms that several experiments share (the GRPO baseline) are trained once."""
  return os.path.join(root, "rl", f"{task}-{'quick' if quick else 'full'}")


def arm_name(label: str) -> str:
  """A workdir name for an arm label ('GRPO + KL 0.1' -> 'grpo_kl_0.1')."""
  out = "".join(ch.lower() if ch.isascii() and ch.isalnum() or ch in ".-" else "_"
                for ch in label)
  return "_".join(part for part in out.split("_") if part)


def run_arm(name: str, make_config: Callable[[int], object], seeds: Sequence[int],
            root: str) -> dict[int, str]:
  """Trains (or reuses) one arm for every seed: {seed: workdir}. `make_config(seed)` gives
  the ConfigDict; its `seed` is set to the seed here."""
  out = {}
  for seed in seeds:
    config = make_config(seed)
    config.seed = seed
    workdir = os.path.join(root, name, f"seed{seed}")
    train(config, workdir)
    out[seed] = workdir
  return out


# -- summaries --------------------------------------------------------------------------
def final_eval(workdir: str) -> dict:
  """The last row of a run that holds held-out metrics (pass@1)."""
  evals = [r for r in read_metrics(workdir) if "pass@1" in r]
  if not evals:
    raise ValueError(f"{workdir} has no evaluation rows")
  return evals[-1]


def eval_rows(workdir: str) -> list[dict]:
  """Every row of a run that holds held-out metrics (pass@1), in step order."""
  return [r for r in read_metrics(workdir) if "pass@1" in r]


def total_flops(row: Mapping) -> float:
  """A metrics row's cumulative FLOPs, sampling + training (docs/algorithms.md, "FLOPs")."""
  return row["flops_sample"] + row["flops_train"]


def at_flops(workdir: str, budget: float) -> dict:
  """The last evaluation row of a run within `budget` cumulative FLOPs ({} if none)."""
  rows = [r for r in eval_rows(workdir) if total_flops(r) <= budget * (1 + 1e-9)]
  return rows[-1] if rows else {}


def flops_budget(runs: Iterable[Mapping[int, str]]) -> float:
  """The smallest final FLOPs count of the runs (each a {seed: workdir}): every run reaches
  it, so all can be read at it (`at_flops`)."""
  return min(total_flops(read_metrics(w)[-1]) for r in runs for w in r.values())


def over_seeds(runs: Mapping[int, str], fn: Callable[[str], float], *,
               digits: int = 3) -> str:
  """'mean ± CI' over seeds of `fn(workdir)` (e.g. a run's mean update norm)."""
  return fmt(*mean_ci(fn(w) for w in runs.values()), digits=digits)


def step_mean(workdir: str, key: str) -> float:
  """The mean of `key` over a run's rows (NaN when it never logged it)."""
  values = [r[key] for r in read_metrics(workdir) if key in r]
  return float(np.mean(values)) if values else math.nan


def wide_eval(workdir: str, *, num_samples: int, num_prompts: int | None = None,
              chunk: int = 64) -> dict:
  """Held-out metrics of a run's final policy with `num_samples` samples per prompt (pass@k
  up to that k), on the run's own held-out problems (`held_out_eval`); cached in
  WORKDIR/eval_n<n>_p<p>.json."""
  with open(os.path.join(workdir, "config.json")) as f:
    run = json.load(f)
  num_prompts = num_prompts or run["eval"]["num_prompts"]
  path = os.path.join(workdir, f"eval_n{num_samples}_p{num_prompts}.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  from explore_rl.training.policy_loader import load_policy
  out = held_out_eval(load_policy(workdir), run, num_samples=num_samples,
                      num_prompts=num_prompts, chunk=chunk)
  with open(path, "w") as f:
    json.dump(out, f)
  return out


def held_out_eval(policy, run: Mapping, *, num_samples: int, num_prompts: int,
                  chunk: int = 64) -> dict:
  """`policy` evaluated as `wide_eval` evaluates the run whose config (a dict) is `run`: its
  task, held-out problems, temperature and lengths (the same draws for every policy given
  the same run config: the base model of a run is compared on that run's problems).
  `chunk` prompts are sampled at once."""
  import jax
  from explore_rl.eval.evaluate import evaluate, held_out_problems
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.tasks import get_task
  task = get_task(run["task"], **run.get("task_kwargs", {}))
  problems = held_out_problems(task, seed=run["seed"], num_prompts=num_prompts,
                               difficulty=run["difficulty"])
  return evaluate(policy, task, problems, num_samples=num_samples,
                  sampling=SamplingConfig(temperature=run["eval"]["temperature"],
                                          max_new_tokens=run["max_response_len"]),
                  prompt_len=run["max_prompt_len"], rng=jax.random.key(run["seed"] + 1),
                  chunk=chunk)


def summarize(runs: Mapping[int, str], keys: Sequence[str], *,
              digits: int = 3) -> dict[str, str]:
  """{key: 'mean ± CI'} over seeds of each key's value at the final evaluation."""
  finals = [final_eval(w) for w in runs.values()]
  return {k: fmt(*mean_ci(f.get(k) for f in finals), digits=digits) for k in keys}


def curves(runs: Mapping[int, str], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, CI half-width) of `key` over seeds, on the steps every seed logged."""
  per_seed = [{r["step"]: r[key] for r in read_metrics(w) if key in r} for w in runs.values()]
  steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
  stats = [mean_ci(s[t] for s in per_seed) for t in steps]
  return (np.asarray(steps), np.asarray([m for m, _ in stats]),
          np.asarray([h for _, h in stats]))


# -- output -----------------------------------------------------------------------------
def write_results(out_dir: str, rows: Sequence[Mapping], columns: Sequence[str], *,
                  title: str, notes: str = "",
                  plots: Mapping[str, Mapping[str, tuple]] | None = None,
                  xlabel: str | Mapping[str, str] = "step") -> str:
  """Writes OUT/table.md (title, table, notes, plots), OUT/table.csv and OUT/<plot>.png.

  plots: {file stem: {label: (x, mean, half_width)}}, drawn with 95% bands; xlabel one
  label for all, or {stem: label} ("step" where a stem is missing).
  Returns the path of table.md.
  """
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, "table.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  lines = [f"# {title}", "", "| " + " | ".join(columns) + " |",
           "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
  if notes:
    lines += ["", notes.strip()]
  for stem, series in (plots or {}).items():
    label = xlabel if isinstance(xlabel, str) else xlabel.get(stem, "step")
    _plot_bands(os.path.join(out_dir, f"{stem}.png"), series, ylabel=stem, xlabel=label)
    lines += ["", f"![{stem}]({stem}.png)"]
  path = os.path.join(out_dir, "table.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def _plot_bands(path: str, series: Mapping[str, tuple], *, ylabel: str, xlabel: str):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5.5, 3.4))
  for label, (x, mean, half) in series.items():
    x, mean, half = (np.asarray(v, np.float64) for v in (x, mean, half))
    ax.plot(x, mean, marker="o", ms=3, label=label)
    band = np.nan_to_num(half)
    ax.fill_between(x, mean - band, mean + band, alpha=0.2)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


# -- the main of an experiment run per task family ------------------------------------------
@dataclasses.dataclass
class TaskReport:
  """What one task family adds to an experiment's results: table rows, verdict lines,
  plots ({stem: {label: (x, mean, half_width)}}) and x-axis labels of those plots."""
  rows: list
  verdicts: list
  plots: dict = dataclasses.field(default_factory=dict)
  xlabels: dict = dataclasses.field(default_factory=dict)


def default_out(out: str, quick: bool) -> str:
  """An experiment's output folder when `--out` is not given: `out`, or with `--quick`
  `out` + "_quick" (git-ignored), so a smoke run never writes over committed results."""
  return out + "_quick" * quick


def experiment_args(argv, *, doc: str, out: str, quick_help: str, seeds: tuple[int, int],
                    extra: Callable[[argparse.ArgumentParser], None] | None = None):
  """Every experiment's command line: `--quick`, `--out` (default `default_out(out, quick)`),
  `--shared` (the priors and baselines shared between experiments, and XLA's compilation
  cache, which this enables), `--seeds` (default `seeds` = (quick, full)) and the flags
  `extra` adds. Returns (args, the seeds as a list)."""
  parser = argparse.ArgumentParser(description=doc.splitlines()[0])
  parser.add_argument("--quick", action="store_true", help=quick_help)
  parser.add_argument("--out", default=None,
                      help=f"default: {out} ({out}_quick with --quick)" if out else None)
  parser.add_argument("--shared", default=SHARED_ROOT, help="shared priors and baselines")
  parser.add_argument("--seeds", type=int, default=None,
                      help=f"default: {seeds[0]} quick, {seeds[1]} full")
  if extra is not None:
    extra(parser)
  args = parser.parse_args(argv)
  if args.out is None and out:
    args.out = default_out(out, args.quick)
  enable_compile_cache(args.shared)
  return args, list(range(args.seeds or seeds[0 if args.quick else 1]))


def main_over_tasks(argv, *, doc: str, name: str, title: str, columns: Sequence[str],
                    run_task: Callable[..., dict],
                    report: Callable[[str, dict, bool], TaskReport],
                    scale_note: Callable[[bool], str], legend: str,
                    tasks: str = "partition,grid_paths") -> int:
  """The command line of an experiment that runs on several task families.

    python experiments/NAME.py [--quick] [--seeds N] [--tasks a,b] [--out DIR] [--shared DIR]

  For each task: `run_task(task, quick=, seeds=, shared=, out=)`, then `report(task,
  results, quick)`; results/NAME/table.md (title, table, verdicts, "Seeds ...;
  scale_note(quick); wall time", legend, plots) is rewritten after every task, so an
  interrupted run keeps what it finished. Seeds default to 2 (quick) or 3 (full).
  """
  args, seeds = experiment_args(
      argv, doc=doc, out=os.path.join("results", name), seeds=(2, 3),
      quick_help="smoke scale (tiny prior, 6 steps)",
      extra=lambda parser: parser.add_argument("--tasks", default=tasks))
  t0 = time.perf_counter()
  rows, lines, plots, xlabels, done = [], [], {}, {}, []
  for task in args.tasks.split(","):
    part = report(task, run_task(task, quick=args.quick, seeds=seeds, shared=args.shared,
                                 out=args.out), args.quick)
    rows += part.rows
    lines += part.verdicts
    plots.update(part.plots)
    xlabels.update(part.xlabels)
    done.append(task)
    wall = time.perf_counter() - t0
    notes = "\n".join(["## Verdicts", ""] + [f"- {v}" for v in lines] + [
        "", f"Tasks done: {', '.join(done)} of {args.tasks}.",
        "", f"Seeds {seeds}; {scale_note(args.quick)}; wall time {wall:.0f} s.", legend])
    write_results(args.out, rows, columns, title=title, notes=notes, plots=plots,
                  xlabel=xlabels)
  print("\n".join(lines))
  print(f"wall time {wall:.0f} s; wrote {os.path.join(args.out, 'table.md')}")
  return 0
