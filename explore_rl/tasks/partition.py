"""`partition`: write a target as a sum of allowed parts; the multi-strategy demo world.

In the spirit of Poly-EPO's synthetic multi-strategy tasks (arXiv 2604.17654):
every multiset of allowed parts summing to the target is a correct, exactly
distinguishable strategy, so the number of distinct successful strategies a
policy finds is measurable against the exact total `num_strategies(problem)`.

  prompt   "sum 12 parts 2,3,5:"       response "5+5+2"   (any summand order)
  signature: the sorted tuple of summands, (2, 5, 5); the summand order is not a strategy.

Difficulty d in [0, 1] raises the number of allowed parts (2..4), their range
([2, 4 + 8d]) and the target ([8 + 8d, 16 + 20d]); every problem has >= 2 strategies.
Number of strategies = the coefficient of x^T in prod_p 1 / (1 - x^p) (coin-change DP).
"""
from __future__ import annotations

import re

import numpy as np

from explore_rl.tasks import chat
from explore_rl.tasks.base import Problem, Task


_SUM = re.compile(r"\d{1,4}(?:\+\d{1,4}){0,199}")


def _count_table(parts: list[int], target: int) -> list[list[int]]:
  """table[i][t] = number of multisets of parts[i:] summing to t."""
  table = [[0] * (target + 1) for _ in range(len(parts) + 1)]
  table[len(parts)][0] = 1
  for i in range(len(parts) - 1, -1, -1):
    for t in range(target + 1):
      table[i][t] = table[i + 1][t] + (table[i][t - parts[i]] if t >= parts[i] else 0)
  return table


def num_strategies(problem: Problem) -> int:
  """The exact number of multisets of allowed parts that sum to the target."""
  return _count_table(problem.meta["parts"], problem.meta["target"])[0][problem.meta["target"]]


def _render(multiset: list[int]) -> str:
  return "+".join(str(p) for p in sorted(multiset, reverse=True))


class PartitionTask(Task):
  """Sums of allowed parts; signature = the multiset of summands."""

  name = "partition"
  default_difficulty = 0.5
  answer_form = "the parts joined by '+', like 5+5+2"

  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    d = self.resolve_difficulty(difficulty)
    num_parts = 2 + int(d * 2.999)
    max_part = 4 + int(8 * d)
    lo, hi = 8 + int(8 * d), 16 + int(20 * d)
    while True:  # >= 2 strategies is likely at every d: a handful of draws at most.
      parts = sorted(int(p) for p in rng.choice(np.arange(2, max_part + 1), num_parts,
                                                replace=False))
      target = int(rng.integers(lo, hi + 1))
      table = _count_table(parts, target)
      if table[0][target] >= 2:
        break
    solution = _render(self._uniform_multiset(parts, target, table, rng))
    return Problem(
        prompt=f"sum {target} parts {','.join(map(str, parts))}:",
        answer=str(target),
        solution=solution,
        difficulty=d,
        meta={"target": target, "parts": parts},
        family=self.family,
    )

  @staticmethod
  def _uniform_multiset(parts, target, table, rng) -> list[int]:
    """A multiset drawn uniformly among all solutions: multiplicities part by part,
    each weighted by the number of completions table[i + 1][rest]."""
    out, rest = [], target
    for i, p in enumerate(parts):
      counts = [table[i + 1][rest - m * p] for m in range(rest // p + 1)]
      m = int(rng.choice(len(counts), p=np.asarray(counts, float) / sum(counts)))
      out += [p] * m
      rest -= m * p
    return out

  def num_strategies(self, problem: Problem) -> int:
    return num_strategies(problem)

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    parts, target = problem.meta["parts"], problem.meta["target"]
    table = _count_table(parts, target)
    want = min(num, table[0][target])
    found: dict[tuple[int, ...], None] = {}
    while len(found) < want:  # uniform draws: the coupon collector over >= want solutions.
      found[tuple(sorted(self._uniform_multiset(parts, target, table, rng)))] = None
    return [_render(list(m)) for m in found]

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """Drop a summand, add one, or misremember one by +-1 (the sum is then off)."""
    summands = [int(s) for s in response.split("+")]
    kind = int(rng.integers(3))
    if kind == 0 and len(summands) > 1:
      del summands[int(rng.integers(len(summands)))]
    elif kind == 1 or len(summands) == 1:
      summands.append(int(rng.choice(problem.meta["parts"])))
    else:
      i = int(rng.integers(len(summands)))
      summands[i] += 1 if rng.random() < 0.5 else -1
    return "+".join(map(str, summands))

  def question(self, problem: Problem) -> str:
    parts = ", ".join(map(str, problem.meta["parts"]))
    return (f"Write {problem.meta['target']} as a sum of numbers taken from {parts} "
            "(each may be used any number of times).")

  def parse_final(self, problem: Problem, final: str) -> list[int] | None:
    return self.parse(problem, chat.left_side(final))

  def parse(self, problem: Problem, response: str) -> list[int] | None:
    text = response.strip()
    if not _SUM.fullmatch(text):
      return None
    return [int(s) for s in text.split("+")]

  def check(self, problem: Problem, parsed: list[int]) -> bool:
    allowed = set(problem.meta["parts"])
    return sum(parsed) == problem.meta["target"] and all(p in allowed for p in parsed)

  def parsed_answer(self, problem: Problem, parsed: list[int]) -> str:
    return str(sum(parsed))

  def parsed_signature(self, problem: Problem, parsed: list[int]) -> tuple[int, ...]:
    return tuple(sorted(parsed))
