"""partition: golden counts, signatures, uniform strategy sampling, difficulty."""
import itertools

import numpy as np
import pytest

from explore_rl.tasks import DEGENERATE, Problem, get_task, sample_problems
from explore_rl.tasks.partition import num_strategies

TASK = get_task("partition")
# 12 from {2, 3, 5}: (#2, #3, #5) in {(6,0,0), (3,2,0), (0,4,0), (2,1,1), (1,0,2)} -> 5.
GOLDEN = Problem(prompt="sum 12 parts 2,3,5:", answer="12", solution="5+5+2", difficulty=0.5,
                 meta={"target": 12, "parts": [2, 3, 5]})


def _brute_force_count(parts, target):
  ranges = [range(target // p + 1) for p in parts]
  return sum(sum(m * p for m, p in zip(ms, parts)) == target for ms in itertools.product(*ranges))


def test_golden_count_and_brute_force():
  assert num_strategies(GOLDEN) == 5
  for p in sample_problems(TASK, seed=0, num=30, difficulty=1.0):
    assert num_strategies(p) == _brute_force_count(p.meta["parts"], p.meta["target"]) >= 2


@pytest.mark.parametrize("response,status", [
    ("5+5+2", "ok"), ("2+5+5", "ok"), (" 3+3+3+3\n", "ok"), ("2+2+2+2+2+2", "ok"),
    ("5+7", "wrong"),          # 7 is not an allowed part
    ("5+5+3", "wrong"),        # sums to 13
    ("4+4+4", "wrong"),        # right sum, part not allowed
    ("5+5+", "malformed"), ("5 + 5 + 2", "malformed"), ("5+-5+12", "malformed"),
    ("12345+1", "malformed"),  # literal longer than 4 digits
])
def test_golden_scores(response, status):
  score = TASK.score(GOLDEN, response)
  assert score.status == status and score.reward == float(status == "ok")


def test_signatures_merge_orders_and_separate_multisets():
  same = {TASK.signature(GOLDEN, r) for r in ["5+5+2", "2+5+5", "5+2+5"]}
  assert same == {(2, 5, 5)}
  different = {TASK.signature(GOLDEN, r) for r in ["5+5+2", "3+3+3+3", "2+2+2+3+3", "5+3+2+2"]}
  assert len(different) == 4
  assert TASK.signature(GOLDEN, "5+5+3") == (3, 5, 5)  # wrong strategies keep their identity
  assert TASK.signature(GOLDEN, "five") == DEGENERATE
  assert TASK.extract_answer(GOLDEN, "5+5+3") == "13"


def test_demonstrations_cover_every_strategy():
  demos = TASK.demonstrations(GOLDEN, np.random.default_rng(0), 8, mistake_rate=0.0)
  assert {TASK.signature(GOLDEN, d) for d in demos} == {
      (2, 2, 2, 2, 2, 2), (2, 2, 2, 3, 3), (3, 3, 3, 3), (2, 2, 3, 5), (2, 5, 5)}


def test_reference_solution_is_uniform_over_strategies():
  # 2000 draws over the 5 strategies: 400 expected each, binomial sd ~ 18.
  rng = np.random.default_rng(0)
  counts = {}
  for _ in range(2000):  # one response = one draw of the uniform strategy sampler
    sig = TASK.signature(GOLDEN, TASK.correct_responses(GOLDEN, rng, 1)[0])
    counts[sig] = counts.get(sig, 0) + 1
  assert len(counts) == 5 and all(320 < c < 480 for c in counts.values()), counts


def _random_solver(problem, rng):
  """A fixed simple solver: add random allowed parts until reaching or passing the target."""
  total, out = 0, []
  while total < problem.meta["target"]:
    out.append(int(rng.choice(problem.meta["parts"])))
    total += out[-1]
  return "+".join(map(str, out))


def test_difficulty_lowers_simple_solver_success():
  rng = np.random.default_rng(0)
  rates = []
  for d in [0.0, 0.5, 1.0]:
    problems = sample_problems(TASK, seed=11, num=400, difficulty=d)
    rates.append(np.mean([TASK.score(p, _random_solver(p, rng)).reward for p in problems]))
  assert rates[0] > rates[1] > rates[2], rates


def test_default_difficulty_texts_are_short():
  for p in sample_problems(TASK, seed=0, num=200):
    assert len(p.prompt) <= 40
    assert max(len(d) for d in TASK.demonstrations(p, np.random.default_rng(0), 4)) <= 40
