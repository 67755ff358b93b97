"""countdown and its expression grammar: golden values, canonical structure, difficulty."""
import itertools
from fractions import Fraction

import numpy as np
import pytest

from explore_rl.tasks import DEGENERATE, Problem, expression, get_task, sample_problems

TASK = get_task("countdown")
GOLDEN = Problem(prompt="make 24 from 3,4,6,8:", answer="24", solution="(8-6)*3*4",
                 difficulty=0.3, meta={"target": 24, "numbers": [3, 4, 6, 8]})


@pytest.mark.parametrize("text,value", [
    ("1+2*3", Fraction(7)), ("(1+2)*3", Fraction(9)), ("8-6-1", Fraction(1)),  # left-assoc
    ("8/4/2", Fraction(1)), ("1/3+1/6", Fraction(1, 2)), (" ( 7 ) ", Fraction(7)),
    ("1/(2-2)", None),                                                   # division by zero
    ("999999*" * 60 + "1", None),                                        # past MAX_BITS
])
def test_evaluate(text, value):
  assert expression.evaluate(expression.parse(text)) == value


@pytest.mark.parametrize("text", [
    "", "1+", "(1", "1)", "-1", "2**3", "2^3", "1e3", "1.5", "abs(1)", "1 2", "1234567",
    "(" * 40 + "1" + ")" * 40, "+".join(["1"] * 200),
])
def test_not_in_the_language(text):
  assert expression.parse(text) is None


@pytest.mark.parametrize("response,status", [
    ("(8-6)*3*4", "ok"), ("3*8", "ok"), ("4*6", "ok"), ("8*3*(6-4)/2", "wrong"),
    ("8/(3-8/3)", "wrong"),     # = 24 but uses 8 twice
    ("6*4*1", "wrong"),         # 1 is not given
    ("3*4*6", "wrong"),         # = 72
    ("8*(3+4-6)*3", "wrong"),   # 3 used twice
    ("6/(4-4)", "wrong"),       # undefined
    ("24", "wrong"), ("(8-6)*3*4=24", "malformed"), ("8 x 3", "malformed"),
])
def test_golden_scores(response, status):
  assert TASK.score(GOLDEN, response).status == status


def test_signatures_merge_association_and_order():
  same = ["(8-6)*3*4", "3*4*(8-6)", "(8-6)*(4*3)", "4*((8-6)*3)", "(8-6)*4*3"]
  assert len({TASK.signature(GOLDEN, r) for r in same}) == 1
  assert TASK.signature(GOLDEN, "8-(6-4)") == TASK.signature(GOLDEN, "8+4-6")
  assert TASK.signature(GOLDEN, "8/(4/3)") == TASK.signature(GOLDEN, "8*3/4")
  different = ["(8-6)*3*4", "3*8", "4*6", "(4-3)*6*(8-4)", "6*(8-4)", "(3+4-6)*8*3"]
  assert len({TASK.signature(GOLDEN, r) for r in different}) == len(different)
  assert TASK.signature(GOLDEN, "3*8") != TASK.signature(GOLDEN, "8+8+8")  # structure differs
  assert TASK.signature(GOLDEN, "3*(8") == DEGENERATE
  assert TASK.extract_answer(GOLDEN, "1/3+1/6") == "1/2"
  assert TASK.extract_answer(GOLDEN, "1/0") is None


def test_demonstrations_show_several_strategies():
  demos = TASK.demonstrations(GOLDEN, np.random.default_rng(0), 6, mistake_rate=0.0)
  assert all(TASK.score(GOLDEN, d).status == "ok" for d in demos)
  assert len({TASK.signature(GOLDEN, d) for d in demos}) == 6
  counts = [len({TASK.signature(p, d) for d in TASK.demonstrations(p, np.random.default_rng(1), 4)})
            for p in sample_problems(TASK, seed=3, num=30)]
  assert np.mean(counts) >= 2.0, counts


def _pair_solver(problem):
  """A fixed simple solver: the first `a op b` over ordered pairs that verifies."""
  numbers = problem.meta["numbers"]
  for (a, b), op in itertools.product(itertools.permutations(numbers, 2), "+-*/"):
    if TASK.score(problem, f"{a}{op}{b}").reward == 1.0:
      return f"{a}{op}{b}"
  return str(numbers[0])


def test_difficulty_lowers_simple_solver_success():
  rates = [np.mean([TASK.score(p, _pair_solver(p)).reward
                    for p in sample_problems(TASK, seed=0, num=300, difficulty=d)])
           for d in [0.0, 0.5, 1.0]]
  assert rates[0] > rates[1] > rates[2], rates


def test_default_difficulty_texts_are_short():
  for p in sample_problems(TASK, seed=0, num=100):
    assert len(p.prompt) <= 40 and len(p.solution) <= 40
