"""arithmetic: golden scores, step-set signatures, strategies, difficulty."""
import numpy as np
import pytest

from explore_rl.tasks import DEGENERATE, Problem, get_task, sample_problems
from explore_rl.tasks.arithmetic import evaluation_orders, value

TASK = get_task("arithmetic")
# 47 + 38*6 = 47 + 228 = 275.
GOLDEN = Problem(prompt="47+38*6=", answer="275", solution="38*6=228,47+228=275",
                 difficulty=0.4, meta={"numbers": [47, 38, 6], "ops": ["+", "*"]})
SUM3 = Problem(prompt="1+2+3=", answer="6", solution="1+2=3,3+3=6", difficulty=0.4,
               meta={"numbers": [1, 2, 3], "ops": ["+", "+"]})


def test_value_uses_precedence():
  assert value([47, 38, 6], ["+", "*"]) == 275
  assert value([2, 3, 4, 5], ["+", "*", "-"]) == 2 + 12 - 5
  assert value([9, 4, 3], ["-", "*"]) == -3


@pytest.mark.parametrize("response,status", [
    ("38*6=228,47+228=275", "ok"), ("6*38=228,228+47=275", "ok"), ("275", "ok"),
    ("38*6=228,47+228=275,275", "ok"),
    ("47+38=85,85*6=510", "wrong"),   # precedence slip
    ("38*6=228,47+228=265", "wrong"),  # carry slip
    ("38*6=238,47+238=285", "wrong"),
    ("38*6=228,47+228=276", "wrong"),
    ("1+1=3,273+2=275", "wrong"),      # a wrong step fails even with the right answer
    ("38*6=228;47+228=275", "malformed"), ("275,38*6=228", "malformed"),
    ("38 * 6 = 228", "malformed"), ("=275", "malformed"),
])
def test_golden_scores(response, status):
  assert TASK.score(GOLDEN, response).status == status


def test_signatures():
  # Same steps in another order or with swapped commutative operands: one strategy.
  assert (TASK.signature(SUM3, "1+2=3,3+3=6") == TASK.signature(SUM3, "2+1=3,3+3=6")
          == ("1+2=3", "3+3=6"))
  assert TASK.signature(GOLDEN, "6*38=228,228+47=275") == TASK.signature(GOLDEN, GOLDEN.solution)
  # Different associations: three different strategies for 1+2+3.
  sigs = {TASK.signature(SUM3, r) for r in ["1+2=3,3+3=6", "2+3=5,1+5=6", "1+3=4,4+2=6"]}
  assert len(sigs) == 3
  assert TASK.signature(SUM3, "6") == ()
  assert TASK.signature(SUM3, "six") == DEGENERATE
  assert TASK.extract_answer(GOLDEN, "47+38=85,85*6=510") == "510"


def test_evaluation_orders():
  # 1+2+3: (1+2)+3, (1+3)+2, (2+3)+1.
  assert len(evaluation_orders([1, 2, 3], ["+", "+"])) == 3
  # 2*3*5: pairs (2,3), (2,5), (3,5) multiplied first.
  assert len(evaluation_orders([2, 3, 5], ["*", "*"])) == 3
  # 10-7+5: the positive partial is combined first: 10-7=3,3+5=8 / 10+5=15,15-7=8 / 5-7=-2,10+-2=8.
  assert len(evaluation_orders([10, 7, 5], ["-", "+"])) == 3
  # 11+13+17+19: all 15 = 5!! binary trees give different step sets.
  assert len(evaluation_orders([11, 13, 17, 19], ["+"] * 3)) == 15


def test_demonstrations_cover_all_orders():
  demos = TASK.demonstrations(SUM3, np.random.default_rng(0), 6, mistake_rate=0.0)
  assert len({TASK.signature(SUM3, d) for d in demos}) == 3
  assert all(TASK.score(SUM3, d).status == "ok" for d in demos)
  for p in sample_problems(TASK, seed=4, num=20):  # default: 2 operators
    orders = evaluation_orders(p.meta["numbers"], p.meta["ops"])
    demos = TASK.demonstrations(p, np.random.default_rng(1), 4, mistake_rate=0.0)
    assert len({TASK.signature(p, d) for d in demos}) == min(4, len(orders))


def _left_to_right_solver(problem):
  """A fixed simple solver that ignores operator precedence."""
  acc = problem.meta["numbers"][0]
  for op, x in zip(problem.meta["ops"], problem.meta["numbers"][1:]):
    acc = acc + x if op == "+" else acc - x if op == "-" else acc * x
  return str(acc)


def test_difficulty_lowers_simple_solver_success():
  rates = [np.mean([TASK.score(p, _left_to_right_solver(p)).reward
                    for p in sample_problems(TASK, seed=2, num=300, difficulty=d)])
           for d in [0.0, 0.5, 1.0]]
  assert rates[0] == 1.0 and rates[0] > rates[1] > rates[2], rates


def test_default_difficulty_texts_are_short():
  for p in sample_problems(TASK, seed=0, num=200):
    assert len(p.prompt) <= 40
    assert max(len(d) for d in TASK.demonstrations(p, np.random.default_rng(0), 4)) <= 40
