"""Fixtures shared by the task tests: every registered family, built with test data."""
import pathlib

import pytest

from explore_rl.tasks import TASKS, get_task

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
# Families that need constructor arguments get the shipped fixture files.
# reasoning_gym stands for every reasoning-gym dataset with its countdown (whose scorer
# evaluates the answer with sympy: the case the sandbox exists for).
TASK_KWARGS = {"jsonl": {"path": [str(FIXTURES / "gsm8k.jsonl"), str(FIXTURES / "math.jsonl")]},
               "reasoning_gym": {"dataset": "countdown"}}
_BUILT: dict = {}


def build_task(name):
  """The family `name` with its test kwargs, built once per session."""
  if name not in _BUILT:
    _BUILT[name] = get_task(name, **TASK_KWARGS.get(name, {}))
  return _BUILT[name]


@pytest.fixture(params=TASKS.names())
def task(request):
  return build_task(request.param)
