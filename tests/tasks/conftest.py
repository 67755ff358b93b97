"""Fixtures shared by the task tests: every registered family, built with test data."""
import pathlib

import pytest

from explore_rl.tasks import TASKS, get_task

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
# Families that need constructor arguments get the shipped fixture files.
TASK_KWARGS = {"jsonl": {"path": [str(FIXTURES / "gsm8k.jsonl"), str(FIXTURES / "math.jsonl")]}}


def build_task(name):
  return get_task(name, **TASK_KWARGS.get(name, {}))


@pytest.fixture(params=TASKS.names())
def task(request):
  return build_task(request.param)
