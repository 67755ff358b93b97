"""What the sandbox costs: scoring a rollout of 128 responses through the pool vs in-process.

  python benchmarks/sandbox_pool.py [--n 128] [--repeats 3] [--max-workers K]

Workloads (the worlds' real scorers on realistic responses: reference answers, wrong
answers and malformed text, a third each):
- reasoning-gym countdown: its scorer evaluates the expression with sympy;
- math-verify on GSM8K/MATH-style final answers (the `jsonl` family's reward).
For each: in-process (the scorer called directly, unconfined: what the sandbox replaces),
the pool batched (`Task.score_many`: one round trip, children in parallel), the pool one
call at a time (`Task.score` in a loop), and the slowest single child of the batch. A
floor: 128 calls of `os.getpid` through the pool (fork, confine, reply, reap). Best of
`--repeats` after a warm-up; the pool's start-up is timed once. Needs the `worlds` extra.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from explore_rl.sandbox import SandboxPool  # noqa: E402
from explore_rl.tasks import get_task, sample_problems, scoring_pool  # noqa: E402
from explore_rl.tasks.jsonl import sandbox_verify  # noqa: E402
from explore_rl.tasks.reasoning_gym import extract_answer_text  # noqa: E402


def best(fn, repeats: int) -> float:
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def countdown_rollout(n: int):
  task = get_task("reasoning_gym:countdown")
  problems = sample_problems(task, seed=0, num=max(1, n // 8), difficulty=0.0)
  rows, responses = [], []
  for i in range(n):
    p = problems[i % len(problems)]
    kind = i % 3
    text = p.solution if kind == 0 else "<answer>1+2*3</answer>" if kind == 1 else "I give up"
    rows.append(p)
    responses.append(text)
  def in_process():
    for p, r in zip(rows, responses):
      answer = extract_answer_text(r)
      if answer is not None:
        task.score_in_process_unsafe(p, answer)
  return task, rows, responses, in_process


def math_rollout(n: int, workdir: str):
  golds = ["72", "\\frac{1}{2}", "2\\sqrt{2}", "(2, 3)", "15,000", "-7", "\\dfrac{3}{4}", "120"]
  path = os.path.join(workdir, "math.jsonl")
  with open(path, "w") as f:
    for i, g in enumerate(golds):
      f.write(json.dumps({"question": f"Question {i}?", "answer": g}) + "\n")
  task = get_task("jsonl", path=path)
  problems = sample_problems(task, seed=0, num=len(golds) * 4)
  right = {"72": "72.0", "\\frac{1}{2}": "0.5", "2\\sqrt{2}": "\\sqrt{8}", "(2, 3)": "(2,3)",
           "15,000": "15000", "-7": "-7", "\\dfrac{3}{4}": "0.75", "120": "120"}
  rows, responses = [], []
  for i in range(n):
    p = problems[i % len(problems)]
    kind = i % 3
    text = (f"so \\boxed{{{right[p.answer]}}}" if kind == 0 else "so \\boxed{41}" if kind == 1
            else "no final answer here")
    rows.append(p)
    responses.append(text)
  def in_process():
    for p, r in zip(rows, responses):
      final = task.parse(p, r)
      if final is not None:
        sandbox_verify(p.answer, final)
  return task, rows, responses, in_process


def report(name, task, rows, responses, in_process, repeats):
  n = len(rows)
  t_in = best(in_process, repeats)
  t_batch = best(lambda: task.score_many(rows, responses), repeats)
  t_seq = best(lambda: [task.score(p, r) for p, r in zip(rows, responses)], 1)
  pool = scoring_pool()
  sent = [r for p, r in zip(rows, responses) if task.parse(p, r) is not None]
  slowest = pool.metrics()["sandbox_seconds_max"]
  print(f"{name:<24} {n:>4} {len(sent):>5} {t_in:>10.3f} {t_batch:>10.3f} {t_seq:>10.3f} "
        f"{slowest:>9.3f} {1e3 * (t_batch - t_in) / max(len(sent), 1):>14.1f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--n", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--max-workers", type=int, default=None)
  args = parser.parse_args()
  print(f"load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())}, "
        f"{len(os.sched_getaffinity(0))} cores")
  start = time.perf_counter()
  pool = scoring_pool(**({"max_workers": args.max_workers} if args.max_workers else {}))
  pool.call("os:getpid")
  isolation = {k: pool.isolation[k] for k in ("network", "mount", "pid", "unprivileged")}
  print(f"shared pool start (imports reasoning_gym, math_verify once): "
        f"{time.perf_counter() - start:.2f} s; max_workers {pool.max_workers}; "
        f"isolation {json.dumps(isolation)}")
  with SandboxPool(max_workers=pool.max_workers) as bare:
    floor = best(lambda: bare.map("os:getpid", [{}] * args.n), args.repeats)
  print(f"floor: {args.n} x os.getpid through a bare pool: {floor:.3f} s "
        f"({1e3 * floor / args.n:.1f} ms a call)\n")
  print(f"{'workload':<24} {'rows':>4} {'sent':>5} {'in-proc s':>10} {'pool s':>10} "
        f"{'1-by-1 s':>10} {'slowest':>9} {'overhead ms/call':>14}")
  report("reasoning-gym countdown", *countdown_rollout(args.n), args.repeats)
  with tempfile.TemporaryDirectory() as workdir:
    report("math-verify (jsonl)", *math_rollout(args.n, workdir), args.repeats)
  print("\nsent: responses with an answer (malformed ones never reach a scorer); pool s: one "
        "batched round trip; slowest: the slowest child seen so far (s); overhead: (pool - "
        "in-process) / sent.")
  print(json.dumps(scoring_pool().metrics()))


if __name__ == "__main__":
  main()
