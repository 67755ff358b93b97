"""`arithmetic`: multi-digit + - * with worked steps, the easy curriculum rung.

  prompt   "47+38*6="        response "38*6=228,47+228=275"
  a response is comma-separated steps "a op b=c" (op in + - *), optionally ending
  with a bare number; its answer is the last result. Reward 1 iff every step is
  arithmetically right and the answer is the value of the prompt (usual precedence).

A chat-shaped problem (tasks/chat.py) asks "What is 47+38*6?"; the reply's final answer
is checked by math-verify (jsonl.py), its signature is that answer normalised.

Strategy signature: the set of steps, commutative operands ordered (order of the
steps does not matter; "1+2=3,3+3=6" and "2+3=5,1+5=6" differ). Different
association / evaluation orders of the same expression are the strategies the
demonstrations show. Difficulty d in [0, 1]: 1 + floor(4d) digits per number
(max 4), 1 + floor(3d) operators (max 3).
"""
from __future__ import annotations

import math
import re

import numpy as np

from explore_rl.tasks import answers
from explore_rl.tasks.base import Problem, Score, Task
from explore_rl.tasks.jsonl import score_final_answers, verify_final_answers


_STEP = re.compile(r"(-?\d{1,40})([-+*])(-?\d{1,40})=(-?\d{1,80})")
_NUMBER = re.compile(r"-?\d{1,80}")
_MAX_STEPS = 64
_OPS = ("+", "-", "*")


def _terms(numbers: list[int], ops: list[str]) -> list[tuple[int, list[int]]]:
  """The expression as signed products: 2+3*4-5 -> [(+1, [2]), (+1, [3, 4]), (-1, [5])]."""
  terms = [(1, [numbers[0]])]
  for op, x in zip(ops, numbers[1:]):
    if op == "*":
      terms[-1][1].append(x)
    else:
      terms.append((1 if op == "+" else -1, [x]))
  return terms


def value(numbers: list[int], ops: list[str]) -> int:
  return sum(sign * math.prod(factors) for sign, factors in _terms(numbers, ops))


def _step(a: int, op: str, b: int) -> tuple[str, int]:
  c = a + b if op == "+" else a - b if op == "-" else a * b
  return f"{a}{op}{b}={c}", c


def _canonical(a: int, op: str, b: int) -> str:
  if op != "-" and b < a:
    a, b = b, a
  return f"{a}{op}{b}"


def evaluation_orders(numbers: list[int], ops: list[str]) -> dict[tuple[str, ...], list[str]]:
  """Every distinct strategy (signature -> steps) of the step model: multiply factor
  pairs within products, then combine a positive partial value with any other one."""
  out: dict[tuple[str, ...], list[str]] = {}

  def combine(items: list[tuple[int, int]], steps: list[str]):
    if len(items) == 1:
      out.setdefault(tuple(sorted(_canonical_step(s) for s in steps)), steps)
      return
    for i, (a, sign_a) in enumerate(items):
      if sign_a < 0:
        continue
      for j, (b, sign_b) in enumerate(items):
        if j != i:
          text, c = _step(a, "+" if sign_b > 0 else "-", b)
          rest = [x for k, x in enumerate(items) if k not in (i, j)]
          combine([(c, 1)] + rest, steps + [text])

  def multiply(terms, done: list[tuple[int, int]], steps: list[str]):
    if not terms:
      combine(done, steps)
      return
    (sign, factors), rest = terms[0], terms[1:]
    if len(factors) == 1:
      multiply(rest, done + [(factors[0], sign)], steps)
      return
    for i in range(len(factors)):
      for j in range(i + 1, len(factors)):
        text, c = _step(factors[i], "*", factors[j])
        left = [c] + [f for k, f in enumerate(factors) if k not in (i, j)]
        multiply([(sign, left)] + rest, done, steps + [text])

  multiply(_terms(numbers, ops), [], [])
  return out


def _canonical_step(text: str) -> str:
  a, op, b, c = _STEP.fullmatch(text).groups()
  return f"{_canonical(int(a), op, int(b))}={c}"


def _left_to_right(numbers: list[int], ops: list[str]) -> list[str]:
  """The precedence slip: evaluate strictly left to right."""
  steps, acc = [], numbers[0]
  for op, x in zip(ops, numbers[1:]):
    text, acc = _step(acc, op, x)
    steps.append(text)
  return steps


class ArithmeticTask(Task):
  """Worked-step arithmetic; signature = the set of steps."""

  name = "arithmetic"
  default_difficulty = 0.4
  answer_form = "a number"
  math_answers = True

  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    d = self.resolve_difficulty(difficulty)
    digits, num_ops = 1 + int(d * 3.999), 1 + int(d * 2.999)
    numbers = [int(x) for x in rng.integers(10 ** (digits - 1), 10**digits, num_ops + 1)]
    ops = [_OPS[i] for i in rng.integers(3, size=num_ops)]
    orders = evaluation_orders(numbers, ops)
    # The reference: products then sums, each left to right (the first order found).
    return Problem(
        prompt="".join(f"{x}{op}" for x, op in zip(numbers, ops + ["="])),
        answer=str(value(numbers, ops)),
        solution=",".join(next(iter(orders.values()))),
        difficulty=d,
        meta={"numbers": numbers, "ops": ops},
        family=self.family,
    )

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    orders = list(evaluation_orders(problem.meta["numbers"], problem.meta["ops"]).values())
    picked = rng.choice(len(orders), size=min(num, len(orders)), replace=False)
    return [",".join(_shuffle_operands(s, rng) for s in orders[i]) for i in picked]

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """Precedence ignored (when that changes the value), else a carry slip in the last step."""
    numbers, ops = problem.meta["numbers"], problem.meta["ops"]
    slip = _left_to_right(numbers, ops)
    if rng.random() < 0.5 and slip[-1].split("=")[1] != problem.answer:
      return ",".join(slip)
    steps = response.split(",")
    lhs, c = steps[-1].split("=")
    result = int(c)
    wrong = result + int(rng.choice([-1, 1])) * 10 ** int(rng.integers(len(str(abs(result)))))
    return ",".join(steps[:-1] + [f"{lhs}={wrong}"])

  def parse(self, problem: Problem, response: str) -> list | None:
    """[(a, op, b, c), ...] plus the answer: a list whose last item is the final int."""
    chunks = response.strip().split(",")
    if len(chunks) > _MAX_STEPS:
      return None
    parsed: list = []
    for k, chunk in enumerate(chunks):
      step = _STEP.fullmatch(chunk)
      if step:
        a, op, b, c = step.groups()
        parsed.append((int(a), op, int(b), int(c)))
      elif k == len(chunks) - 1 and _NUMBER.fullmatch(chunk):
        parsed.append(int(chunk))
      else:
        return None
    return parsed

  @staticmethod
  def _final(parsed: list) -> int:
    return parsed[-1] if isinstance(parsed[-1], int) else parsed[-1][3]

  # A chat reply parses to its final answer, a str (tasks/chat.py).
  def question(self, problem: Problem) -> str:
    return f"What is {problem.prompt.rstrip('=')}?"

  def parse_final(self, problem: Problem, final: str) -> str | None:
    return final if answers.normalize(final) else None

  def score_many(self, problems, responses) -> list[Score]:
    """Plain responses checked here; chat replies' final answers by math-verify, all in one
    round trip of the sandboxed pool."""
    chat = [i for i, p in enumerate(problems) if p.chat]
    out = [None if p.chat else self.score(p, r) for p, r in zip(problems, responses)]
    for i, s in zip(chat, score_final_answers(self, [problems[i] for i in chat],
                                              [responses[i] for i in chat])):
      out[i] = s
    return out

  def check(self, problem: Problem, parsed: list | str) -> bool:
    if isinstance(parsed, str):
      return verify_final_answers([problem], [parsed])[0].status == "ok"
    steps_right = all(_step(a, op, b)[1] == c for a, op, b, c in
                      (s for s in parsed if not isinstance(s, int)))
    return steps_right and str(self._final(parsed)) == problem.answer

  def parsed_answer(self, problem: Problem, parsed: list | str) -> str:
    return answers.normalize(parsed) if isinstance(parsed, str) else str(self._final(parsed))

  def parsed_signature(self, problem: Problem, parsed: list | str) -> tuple[str, ...] | str:
    if isinstance(parsed, str):
      return answers.normalize(parsed)
    return tuple(sorted(f"{_canonical(a, op, b)}={c}" for a, op, b, c in
                        (s for s in parsed if not isinstance(s, int))))


def _shuffle_operands(step: str, rng: np.random.Generator) -> str:
  """Swap the operands of a commutative step half the time (same signature)."""
  a, op, b, c = _STEP.fullmatch(step).groups()
  if op != "-" and rng.random() < 0.5:
    a, b = b, a
  return f"{a}{op}{b}={c}"
