"""`grid_paths`: shortest paths on a grid with obstacles; a second multi-strategy world.

  prompt   "path ..#./.#../..../....:"   (rows top to bottom, '#' = obstacle;
                                           start top-left, goal bottom-right)
  response "DDRDRR"                       (moves R = right, D = down, L, U)
Correct iff the walk stays on free cells and reaches the goal in the fewest
moves (rows - 1 + cols - 1, so only R and D). Every such path is a distinct
strategy, signature = the move string; their number is the lattice-path count
around the obstacles (DP), like `partition` a Poly-EPO-style (arXiv 2604.17654)
task with an exact strategy total. Difficulty d in [0, 1]: a square grid of side
3 + floor(4d) (max 6) with obstacle density 0.1 + 0.2d; every problem has >= 2 paths.
"""
from __future__ import annotations

import re

import numpy as np

from explore_rl.tasks.base import Problem, Task


_MOVES = re.compile(r"[RDLU]{1,200}")
_STEP = {"R": (0, 1), "D": (1, 0), "L": (0, -1), "U": (-1, 0)}


def _paths_to_goal(rows: list[str]) -> list[list[int]]:
  """ways[r][c] = number of R/D paths from (r, c) to the goal over free cells."""
  h, w = len(rows), len(rows[0])
  ways = [[0] * (w + 1) for _ in range(h + 1)]
  for r in range(h - 1, -1, -1):
    for c in range(w - 1, -1, -1):
      if rows[r][c] == "#":
        continue
      ways[r][c] = 1 if (r, c) == (h - 1, w - 1) else ways[r + 1][c] + ways[r][c + 1]
  return ways


def num_strategies(problem: Problem) -> int:
  """The exact number of shortest obstacle-free paths from start to goal."""
  return _paths_to_goal(problem.meta["rows"])[0][0]


def _uniform_path(rows: list[str], ways, rng: np.random.Generator) -> str:
  """A shortest path drawn uniformly: at each cell, R or D weighted by completions."""
  h, w = len(rows), len(rows[0])
  r = c = 0
  out = []
  while (r, c) != (h - 1, w - 1):
    right, down = ways[r][c + 1], ways[r + 1][c]
    if rng.random() < right / (right + down):
      out.append("R")
      c += 1
    else:
      out.append("D")
      r += 1
  return "".join(out)


class GridPathsTask(Task):
  """Shortest grid paths around obstacles; signature = the path."""

  name = "grid_paths"
  default_difficulty = 0.3
  answer_form = "the moves as one string of R, D, L, U, like RRDD"

  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    d = self.resolve_difficulty(difficulty)
    n, density = 3 + int(d * 3.999), 0.1 + 0.2 * d
    while True:  # most grids keep >= 2 paths: a few draws at most.
      blocked = rng.random((n, n)) < density
      blocked[0, 0] = blocked[-1, -1] = False
      rows = ["".join("#" if b else "." for b in row) for row in blocked]
      ways = _paths_to_goal(rows)
      if ways[0][0] >= 2:
        break
    return Problem(
        prompt=f"path {'/'.join(rows)}:",
        answer=f"{n - 1},{n - 1}",
        solution=_uniform_path(rows, ways, rng),
        difficulty=d,
        meta={"rows": rows},
        family=self.family,
    )

  def num_strategies(self, problem: Problem) -> int:
    return num_strategies(problem)

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    rows = problem.meta["rows"]
    ways = _paths_to_goal(rows)
    want, found = min(num, ways[0][0]), {}
    while len(found) < want:  # uniform draws: the coupon collector over >= want paths.
      found[_uniform_path(rows, ways, rng)] = None
    return list(found)

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """Flip one move (ends beside the goal, or walks into an obstacle) or stop one short."""
    if rng.random() < 0.5:
      return response[:-1]
    i = int(rng.integers(len(response)))
    return response[:i] + ("D" if response[i] == "R" else "R") + response[i + 1:]

  def question(self, problem: Problem) -> str:
    rows = "\n".join(problem.meta["rows"])
    return (f"Find a shortest path on this grid ('#' is a wall) from the top-left cell to the "
            f"bottom-right one, moving R (right), D (down), L (left) or U (up):\n{rows}")

  def parse_final(self, problem: Problem, final: str):
    return self.parse(problem, "".join(final.replace(",", " ").split()).upper())

  def parse(self, problem: Problem, response: str) -> tuple[str, tuple[int, int] | None] | None:
    """(moves, end cell), the end None when the walk leaves the free cells."""
    moves = response.strip()
    if not _MOVES.fullmatch(moves):
      return None
    rows = problem.meta["rows"]
    r = c = 0
    for m in moves:
      r, c = r + _STEP[m][0], c + _STEP[m][1]
      if not (0 <= r < len(rows) and 0 <= c < len(rows[0])) or rows[r][c] == "#":
        return moves, None
    return moves, (r, c)

  def check(self, problem: Problem, parsed) -> bool:
    moves, end = parsed
    rows = problem.meta["rows"]
    return end == (len(rows) - 1, len(rows[0]) - 1) and len(moves) == len(rows) + len(rows[0]) - 2

  def parsed_answer(self, problem: Problem, parsed) -> str | None:
    return None if parsed[1] is None else f"{parsed[1][0]},{parsed[1][1]}"

  def parsed_signature(self, problem: Problem, parsed) -> str:
    return parsed[0]
