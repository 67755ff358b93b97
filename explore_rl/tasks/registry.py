"""TASKS: task family name -> Task class; configs select families by name."""
from __future__ import annotations

import numpy as np

from explore_rl.registry import Registry
from explore_rl.tasks.base import Problem, Task

TASKS: Registry[type[Task]] = Registry("task")


def get_task(name: str, **kwargs) -> Task:
  """The task family `name` built with `kwargs`; unknown names list the valid ones."""
  return TASKS.get(name)(**kwargs)


def problem_rng(seed: int, index: int) -> np.random.Generator:
  """The generator of problem `index` of stream `seed`: prefix-stable and resumable."""
  return np.random.default_rng([seed, index])


def sample_problems(task: Task | str, seed: int, num: int,
                    difficulty: float | None = None) -> list[Problem]:
  """`num` problems, deterministic for `seed`; the first k equal sample_problems(.., k, ..)."""
  if isinstance(task, str):
    task = get_task(task)
  return [task.sample(problem_rng(seed, i), difficulty) for i in range(num)]
