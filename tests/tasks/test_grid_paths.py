"""grid_paths: golden counts vs brute force, scores, path signatures, difficulty."""
import itertools

import numpy as np
import pytest

from explore_rl.tasks import DEGENERATE, Problem, get_task, sample_problems
from explore_rl.tasks.grid_paths import num_strategies

TASK = get_task("grid_paths")
# ..#
# ...
# #..   shortest paths: RDRD, RDDR, DRRD, DRDR (RR.. hits '#', DD.. hits '#') -> 4.
GOLDEN = Problem(prompt="path ..#/.../#..:", answer="2,2", solution="RDRD", difficulty=0.0,
                 meta={"rows": ["..#", "...", "#.."]})


def _brute_force_count(rows):
  h, w = len(rows), len(rows[0])
  count = 0
  for downs in itertools.combinations(range(h + w - 2), h - 1):
    r = c = 0
    ok = True
    for i in range(h + w - 2):
      r, c = (r + 1, c) if i in downs else (r, c + 1)
      ok &= rows[r][c] == "."
    count += ok
  return count


def test_golden_count_and_brute_force():
  assert num_strategies(GOLDEN) == 4
  for p in sample_problems(TASK, seed=0, num=30, difficulty=1.0):
    assert num_strategies(p) == _brute_force_count(p.meta["rows"]) >= 2


@pytest.mark.parametrize("response,status", [
    ("RDRD", "ok"), ("DRDR", "ok"), ("  DRRD\n", "ok"),
    ("RRDD", "wrong"),     # walks into the obstacle at (0, 2)
    ("RDR", "wrong"),      # stops short
    ("RDRDLR", "wrong"),   # reaches the goal, not by a shortest path
    ("RDRDD", "wrong"),    # leaves the grid
    ("rdrd", "malformed"), ("R D R D", "malformed"), ("RDRDX", "malformed"),
])
def test_golden_scores(response, status):
  assert TASK.score(GOLDEN, response).status == status


def test_signatures():
  paths = ["RDRD", "RDDR", "DRRD", "DRDR"]
  assert len({TASK.signature(GOLDEN, p) for p in paths}) == 4
  assert TASK.signature(GOLDEN, " RDRD\n") == TASK.signature(GOLDEN, "RDRD") == "RDRD"
  assert TASK.signature(GOLDEN, "north") == DEGENERATE
  assert TASK.extract_answer(GOLDEN, "RD") == "1,1" and TASK.extract_answer(GOLDEN, "RR") is None


def test_demonstrations_cover_every_path():
  demos = TASK.demonstrations(GOLDEN, np.random.default_rng(0), 8, mistake_rate=0.0)
  assert set(demos) == {"RDRD", "RDDR", "DRRD", "DRDR"}


def _greedy_solver(problem):
  """A fixed simple solver: go right while the next cell is free, else down."""
  rows, r, c, out = problem.meta["rows"], 0, 0, ""
  while (r, c) != (len(rows) - 1, len(rows[0]) - 1):
    if c + 1 < len(rows[0]) and rows[r][c + 1] == ".":
      c, out = c + 1, out + "R"
    elif r + 1 < len(rows) and rows[r + 1][c] == ".":
      r, out = r + 1, out + "D"
    else:
      break
  return out or "R"


def test_difficulty_lowers_simple_solver_success():
  rates = [np.mean([TASK.score(p, _greedy_solver(p)).reward
                    for p in sample_problems(TASK, seed=3, num=300, difficulty=d)])
           for d in [0.0, 0.5, 1.0]]
  assert rates[0] > rates[1] > rates[2], rates


def test_default_difficulty_texts_are_short():
  for p in sample_problems(TASK, seed=0, num=100):
    assert len(p.prompt) <= 40 and len(p.solution) <= 40
