"""The base model's pass@k map: a pretrained model, untrained, on candidate tasks; the
training tasks chosen from it (explore_rl/eval/base_map.py: the candidates, the
measurement and the selection rule).

  .venv/bin/python experiments/base_model.py                       # every candidate
  .venv/bin/python experiments/base_model.py --tasks arithmetic-d0,rg-chain_sum-d0
  .venv/bin/python experiments/base_model.py --list                # the candidates
  .venv/bin/python experiments/base_model.py --table               # rebuild the table only
  .venv/bin/python experiments/base_model.py --quick --out /tmp/map  # smoke: QUICK_TASKS

Each task's result is written to OUT/tasks/<task>.json the moment it finishes (its
spec, model, sizes, metrics, command, machine and wall time); a task whose file exists
is skipped, never measured again, so the map runs in parts; only a larger size
(--num_prompts, --num_samples, --max_new_tokens) or a changed spec (the candidate's task
kwargs) measures it again and replaces it.
OUT/table.md and table.csv are rebuilt from those files after every task, with the
selection rule applied: the chosen training tasks are printed and written under the table.

Defaults: SmolLM2-135M-Instruct (init_from smollm2-135m-instruct), 64 held-out prompts x
64 samples at temperature 1, 128 new tokens, the model's chat template. Smaller sizes
(--num_prompts, --num_samples) are recorded per task and shown in the table's "size"
column. Hardware and wall times: each task's JSON and the table (measured: 7-9 min per
task at 32 prompts x 16 samples x 128 tokens on a 2-core Intel Xeon at load 3-5, 2 GB RSS).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from explore_rl import harness as ex
from explore_rl import summaries
from explore_rl.eval import base_map

# --quick: one of the project's families and one of reasoning-gym's, 2 prompts x 4 samples
# x 16 new tokens each, so the suite runs the map end to end on the real model.
QUICK_TASKS = "arithmetic-d0,rg-chain_sum-d0"

COLUMNS = ["task", "kind", "pass@1", "pass@8", "pass@16", "pass@64", "headroom",
           "distinct strategies", "distinct answers", "entropy", "response len", "truncated",
           "malformed", "size", "wall (s)", "eligible"]


def parse(argv):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--tasks", default="all", help="comma-separated keys (--list), or all")
  p.add_argument("--init_from", default="smollm2-135m-instruct")
  p.add_argument("--num_prompts", type=int, default=64)
  p.add_argument("--num_samples", type=int, default=64)
  p.add_argument("--max_new_tokens", type=int, default=128)
  p.add_argument("--chunk", type=int, default=4, help="prompts sampled at once")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=os.path.join("results", "base_model"))
  p.add_argument("--list", action="store_true", help="print the candidates and exit")
  p.add_argument("--table", action="store_true", help="rebuild the table and exit")
  p.add_argument("--quick", action="store_true",
                 help=f"smoke: {QUICK_TASKS} at 2 prompts x 4 samples x 16 tokens (needs --out)")
  args = p.parse_args(argv)
  if args.quick:
    if args.out == p.get_default("out"):
      p.error("--quick writes a smoke map: give it its own --out, not results/base_model")
    args.tasks, args.num_prompts, args.num_samples, args.max_new_tokens = QUICK_TASKS, 2, 4, 16
  return args


def run_task(spec: base_map.TaskSpec, policy, args) -> dict:
  """The summary of one task: its map entry and how it was measured."""
  t0 = time.perf_counter()
  entry = base_map.measure(policy, spec, num_prompts=args.num_prompts,
                           num_samples=args.num_samples, max_new_tokens=args.max_new_tokens,
                           seed=args.seed, chunk=args.chunk)
  return {"spec": spec.to_json(), "init_from": args.init_from,
          "num_prompts": args.num_prompts, "num_samples": args.num_samples,
          "max_new_tokens": args.max_new_tokens, "temperature": 1.0, "seed": args.seed,
          "metrics": entry, "wall_s": time.perf_counter() - t0,
          "command": command(spec.key, args),
          "machine": summaries.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime())}


def changed_spec(summary: dict) -> bool:
  """Whether a task was measured under another spec than its candidate's now (False for
  a task no longer among the candidates: nothing measures it again)."""
  key = summary["spec"]["key"]
  return key in base_map.BY_KEY and summary["spec"] != base_map.BY_KEY[key].to_json()


def outdated(summary: dict, args) -> bool:
  """Whether a task's summary must be measured again, and replaced: it was measured at a
  smaller size than `args` asks for (fewer prompts, samples or new tokens), or under
  another spec than the candidate's now (its task kwargs changed: another answer reading,
  another config)."""
  return changed_spec(summary) or any(
      summary[k] < getattr(args, k) for k in ("num_prompts", "num_samples", "max_new_tokens"))


def command(key: str, args) -> str:
  """The command that measures task `key` as this one did."""
  return (f".venv/bin/python experiments/base_model.py --tasks {key} --init_from "
          f"{args.init_from} --num_prompts {args.num_prompts} --num_samples "
          f"{args.num_samples} --max_new_tokens {args.max_new_tokens} --seed {args.seed}")


def _k(m: dict, k: int) -> str:
  return f"{m[f'pass@{k}']:.3f}" if f"pass@{k}" in m else "n/a"


def row(s: dict) -> dict:
  m = s["metrics"]
  return {"task": s["spec"]["key"], "kind": s["spec"]["kind"],
          "pass@1": f"{m['pass@1']:.3f} ± {m['pass@1_stderr']:.3f}",
          "pass@8": _k(m, 8), "pass@16": _k(m, 16), "pass@64": _k(m, 64),
          "headroom": f"{base_map.headroom(m):.3f}",
          "distinct strategies": f"{m['distinct_correct_strategies']:.2f}",
          "distinct answers": f"{m['distinct_correct_answers']:.2f}",
          "entropy": f"{m['eval_entropy']:.3f}", "response len": f"{m['eval_response_len']:.0f}",
          "truncated": f"{m['eval_truncated_frac']:.2f}",
          "malformed": f"{m['eval_malformed_frac']:.2f}",
          "size": f"{s['num_prompts']} x {s['num_samples']} x {s['max_new_tokens']}",
          "wall (s)": f"{s['wall_s']:.0f}", "eligible": "yes" if base_map.eligible(m) else ""}


def write_table(out: str) -> list[str]:
  """OUT/table.md and table.csv from OUT/tasks/*.json; returns the chosen tasks."""
  done = summaries.read_all(os.path.join(out, "tasks"))
  # A summary whose task left the candidates stays in the table but is never chosen.
  removed = [k for k in done if k not in base_map.BY_KEY]
  picks = base_map.choose({k: s for k, s in done.items() if k not in removed})
  missing = [s.key for s in base_map.CANDIDATES if s.key not in done]
  stale = [k for k, s in done.items() if changed_spec(s)]
  low, high = base_map.PASS1_RANGE
  models = sorted({s["init_from"] for s in done.values()})
  notes = [
      "## Chosen training tasks", "",
      f"Rule: pass@1 in [{low}, {high}] and pass@k_max - pass@1 >= {base_map.MIN_HEADROOM} "
      "(headroom, k_max = the largest k measured: 64 at full size); the eligible task with "
      "the largest headroom, then the largest headroom among another kind.", "",
      f"Chosen: {', '.join(picks) if picks else 'none yet (no measured task is eligible)'}.",
      "", f"Measured {len(done)} of {len(base_map.CANDIDATES)} candidates; not yet measured: "
      f"{', '.join(missing) or 'none'}.", "",
      *([f"Measured under an older spec (measured again on the next run): "
         f"{', '.join(stale)}.", ""] if stale else []),
      *([f"No longer candidates (kept in the table, never chosen): {', '.join(removed)}.",
         ""] if removed else []),
      "Below the full size (64 prompts x 64 samples): " + (", ".join(
          k for k, s in done.items() if min(s["num_prompts"], s["num_samples"]) < 64)
          or "none") + ".", "",
      "pass@k: unbiased estimator (Chen et al. 2021) from the samples of each prompt, mean "
      "over prompts (± its standard error for pass@1); distinct strategies / answers: "
      "distinct correct strategy signatures / final answers per prompt among the samples; "
      "entropy: mean token entropy (nats); response len: mean tokens; truncated: the share "
      "of samples that hit the token limit (scored wrong); malformed: the share whose final "
      "answer the parser cannot find (no '####', \\boxed{}, <answer> or 'the answer is'; "
      "tasks whose answers are numbers, the project's arithmetic and reasoning-gym's "
      f"{', '.join(base_map.NUMERIC_DATASETS)}, also take the last number); size: prompts "
      "x samples x max new tokens.", "",
      "## Commands, wall times and machines", ""]
  notes += [f"- {k}: `{s['command']}` ({s['wall_s']:.0f} s, {s['machine']}, {s['date']})"
            for k, s in done.items()]
  ex.write_results(out, [row(s) for s in done.values()], COLUMNS,
                   title=f"The base model's pass@k map ({', '.join(models) or 'no task yet'})",
                   notes="\n".join(notes))
  return picks


def main(argv=None) -> int:
  args = parse(argv)
  if args.list:
    for spec in base_map.CANDIDATES:
      print(f"{spec.key:32s} {spec.kind:14s} {spec.task} {dict(spec.task_kwargs)} "
            f"difficulty {spec.difficulty}")
    return 0
  tasks_dir = os.path.join(args.out, "tasks")
  keys = [s.key for s in base_map.CANDIDATES] if args.tasks == "all" else \
      args.tasks.split(",")
  done = summaries.read_all(tasks_dir)
  todo = [base_map.get_spec(k) for k in keys if k not in done or outdated(done[k], args)]
  policy = None
  for spec in [] if args.table else todo:
    if policy is None:
      from explore_rl.training.policy_loader import load_initial_policy
      policy = load_initial_policy(args.init_from)
    path = summaries.write(tasks_dir, spec.key, run_task(spec, policy, args))
    print(f"{spec.key}: wrote {path}", flush=True)
    write_table(args.out)
  picks = write_table(args.out)
  print(f"chosen training tasks: {', '.join(picks) or 'none yet'}; "
        f"wrote {os.path.join(args.out, 'table.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
