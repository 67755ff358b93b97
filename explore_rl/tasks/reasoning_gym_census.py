"""Which of reasoning-gym's datasets can serve as worlds here.

  .venv/bin/python -m explore_rl.tasks.reasoning_gym_census [--num 3] [--difficulty 0]

A dataset passes when the family `reasoning_gym:<name>` builds, draws `num` problems at
`difficulty`, and the reference solution of each scores 1 through the sandboxed pool (the
path training takes). Measured (reasoning-gym 0.1.25, 3 problems at difficulty 0, 2-core
CPU, 155 s): 99 of 106 pass. The 7 that do not: boxnet, graph_color, propositional_logic,
rubiks_cube, rush_hour (no reference answer: their scorers accept any valid one, so they
are refused, see tasks/reasoning_gym.py); composite (a mixture of other datasets that needs
its own config); knight_swap (no problem generated at difficulty 0 in 100 draws).
"""
from __future__ import annotations

import argparse
from typing import Iterable

from explore_rl.tasks.registry import get_task, sample_problems


def census(names: Iterable[str] | None = None, *, num: int = 3, difficulty: float = 0.0,
           seed: int = 0) -> dict[str, str | None]:
  """name -> None when the dataset passes (module docstring), else why not (one line)."""
  if names is None:
    from reasoning_gym.factory import DATASETS
    names = DATASETS
  out: dict[str, str | None] = {}
  for name in sorted(names):
    try:
      task = get_task(f"reasoning_gym:{name}")
      problems = sample_problems(task, seed=seed, num=num, difficulty=difficulty)
      rewards = [s.reward for s in task.score_many(problems, [p.solution for p in problems])]
      out[name] = None if all(r == 1.0 for r in rewards) else \
          f"reference solutions score {rewards}"
    except Exception as e:  # noqa: BLE001  third-party generators raise any type; report it
      out[name] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
  return out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num", type=int, default=3, help="problems per dataset")
  parser.add_argument("--difficulty", type=float, default=0.0)
  args = parser.parse_args(argv)
  results = census(num=args.num, difficulty=args.difficulty)
  failed = {name: why for name, why in results.items() if why is not None}
  print(f"{len(results) - len(failed)} of {len(results)} datasets pass ({args.num} problems at "
        f"difficulty {args.difficulty}, reference solutions scored in the sandbox)")
  for name, why in failed.items():
    print(f"  {name}: {why}")


if __name__ == "__main__":
  main()
