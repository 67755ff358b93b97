"""`countdown`: reach a target from given numbers with + - * / (each number at most once).

  prompt   "make 24 from 3,4,6,8:"     response "(8-6)*3*4"
The response is parsed by `expression.parse` (a recursive-descent grammar with
size/depth limits, never `eval`) and evaluated exactly over fractions; it is
correct iff its literals are a sub-multiset of the given numbers and its value is
the target. Intermediate values may be negative or fractional.

Strategy signature: `expression.canonical` of the tree, the operation structure
up to associativity and commutativity, with the numbers used at its leaves:
"3*4*(8-6)" and "(8-6)*(4*3)" coincide; "(8-6)*3*4" and "8*3" do not.
Difficulty d in [0, 1]: 3 + floor(4d) numbers (max 6) drawn from [1, 10 + 40d],
targets in [10, 50 + 950d] built by combining a random subset of 2..k of them.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from explore_rl.tasks import chat, expression
from explore_rl.tasks.base import Problem, Task


_OPS = ("+", "-", "*", "/")
# Demonstration search budget (combination nodes): enough to collect several
# strategies for 4 numbers, and bounded for 6.
_SEARCH_BUDGET = 4000


def _combine(a, b, op: str):
  """(value, text, top) of a op b with only the parentheses precedence needs."""
  (va, ta, top_a), (vb, tb, top_b) = a, b
  wrap = lambda t, top, need: f"({t})" if top in need else t
  if op == "+":
    return va + vb, f"{ta}+{tb}", "+"
  if op == "-":
    return va - vb, f"{ta}-{wrap(tb, top_b, '+')}", "+"
  if op == "*":
    return va * vb, f"{wrap(ta, top_a, '+')}*{wrap(tb, top_b, '+')}", "*"
  return va // vb, f"{wrap(ta, top_a, '+')}/{wrap(tb, top_b, '+*')}", "*"


def _moves(pool, order: np.ndarray):
  """Game moves: combine two pool items with an op keeping values positive integers
  (no multiplication or division by 1), in the order of the permutation `order`."""
  for flat in order:
    i, j, op = flat // (len(pool) * 4), (flat // 4) % len(pool), _OPS[flat % 4]
    if i == j:
      continue
    a, b = pool[i], pool[j]
    if op in "+*" and i > j:  # commutative: one order is enough
      continue
    if (op == "-" and a[0] <= b[0]) or (op == "/" and (b[0] <= 1 or a[0] % b[0])):
      continue
    if op == "*" and 1 in (a[0], b[0]):  # x*1 would pad strategies with no-op steps
      continue
    rest = [x for k, x in enumerate(pool) if k not in (i, j)]
    yield [_combine(a, b, op)] + rest


def _leaf(n: int):
  return (n, str(n), "num")


class CountdownTask(Task):
  """Countdown numbers game; signature = canonical expression structure."""

  name = "countdown"
  default_difficulty = 0.3
  answer_form = "one arithmetic expression, like (8-6)*3*4"

  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    d = self.resolve_difficulty(difficulty)
    k, top = 3 + int(d * 3.999), 10 + int(40 * d)
    lo, hi = 10, 50 + int(950 * d)
    while True:  # rejection: a few draws on average.
      numbers = sorted(int(n) for n in rng.integers(1, top + 1, k))
      pool = [_leaf(numbers[i]) for i in rng.choice(k, int(rng.integers(2, k + 1)), False)]
      while len(pool) > 1:
        moves = list(_moves(pool, rng.permutation(len(pool) ** 2 * 4)))
        pool = moves[int(rng.integers(len(moves)))]
      target, text, _ = pool[0]
      if lo <= target <= hi and target not in numbers:
        break
    return Problem(
        prompt=f"make {target} from {','.join(map(str, numbers))}:",
        answer=str(target),
        solution=text,
        difficulty=d,
        meta={"target": target, "numbers": numbers},
        family=self.family,
    )

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    """The reference plus distinct strategies from a randomised, budgeted game search."""
    target = problem.meta["target"]
    found = {self.signature(problem, problem.solution): problem.solution}
    budget = [_SEARCH_BUDGET]

    def search(pool):
      for value, text, _ in pool:
        if value == target:
          found.setdefault(self.signature(problem, text), text)
      if len(pool) == 1:
        return
      for child in _moves(pool, rng.permutation(len(pool) ** 2 * 4)):
        if len(found) >= num or budget[0] <= 0:
          return
        budget[0] -= 1
        search(child)

    search([_leaf(n) for n in problem.meta["numbers"]])
    return list(found.values())[:num]

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """Swap one operator for another (an arithmetic slip); retried until wrong."""
    positions = [i for i, c in enumerate(response) if c in _OPS]
    for _ in range(10):
      i = int(rng.choice(positions))
      op = str(rng.choice([o for o in _OPS if o != response[i]]))
      slip = response[:i] + op + response[i + 1:]
      if self.score(problem, slip).status == "wrong":
        return slip
    return f"({response})+1"

  def question(self, problem: Problem) -> str:
    numbers = ", ".join(map(str, problem.meta["numbers"]))
    return (f"Reach {problem.meta['target']} from the numbers {numbers} with +, -, * and /, "
            "using each number at most once.")

  def parse_final(self, problem: Problem, final: str):
    return self.parse(problem, chat.left_side(final))

  def parse(self, problem: Problem, response: str):
    return expression.parse(response)

  def check(self, problem: Problem, parsed) -> bool:
    used, given = Counter(expression.leaves(parsed)), Counter(problem.meta["numbers"])
    return not (used - given) and expression.evaluate(parsed) == problem.meta["target"]

  def parsed_answer(self, problem: Problem, parsed) -> str | None:
    value = expression.evaluate(parsed)
    return None if value is None else expression.render(value)

  def parsed_signature(self, problem: Problem, parsed) -> str:
    return expression.canonical(parsed)
