"""The task protocol, checked for every registered family."""
import json
import string

import numpy as np
import pytest

from explore_rl.tasks import (
    DEGENERATE, TASKS, Problem, get_task, register_family, sample_problems, task_of)

PRINTABLE = set(string.printable) - set("\t\r\x0b\x0c")


def test_get_task_rejects_unknown_names():
  with pytest.raises(ValueError, match="valid names: .*partition"):
    get_task("no_such_family")


def test_sampling_is_deterministic_and_prefix_stable(task):
  a = sample_problems(task, seed=3, num=6)
  assert a == sample_problems(task, seed=3, num=6)
  assert a[:4] == sample_problems(task, seed=3, num=4)
  assert a != sample_problems(task, seed=4, num=6)


def test_problems_are_ascii_and_json(task):
  for p in sample_problems(task, seed=0, num=20):
    assert isinstance(p, Problem)
    assert set(p.prompt) <= PRINTABLE and set(p.solution) <= PRINTABLE, p
    assert json.loads(json.dumps(dict(p.meta))) == dict(p.meta)
    assert 0.0 <= p.difficulty <= 1.0


@pytest.mark.parametrize("difficulty", [0.0, 0.5, 1.0])
def test_reference_solutions_score_one(task, difficulty):
  for p in sample_problems(task, seed=1, num=20, difficulty=difficulty):
    score = task.score(p, p.solution)
    assert (score.reward, score.status) == (1.0, "ok"), (p, score)
    assert task.signature(p, p.solution) != DEGENERATE
    assert task.extract_answer(p, p.solution) is not None
    truncated = task.score(p, p.solution, truncated=True)
    assert (truncated.reward, truncated.status) == (0.0, "truncated")


def test_garbage_is_malformed_and_degenerate(task):
  p = sample_problems(task, seed=2, num=1)[0]
  for junk in ["", "   ", "hello world", "((((", "x" * 10_000]:
    assert task.score(p, junk).status == "malformed", junk
    assert task.signature(p, junk) == DEGENERATE
    assert task.extract_answer(p, junk) is None


def test_demonstrations_verify_and_show_mistakes(task):
  rng = np.random.default_rng(0)
  for p in sample_problems(task, seed=5, num=10):
    demos = task.demonstrations(p, rng, 8, mistake_rate=0.0)
    assert len(demos) == 8
    assert all(task.score(p, d).status == "ok" for d in demos), (p, demos)
    distinct = {task.signature(p, d) for d in demos}
    known = task.num_strategies(p)
    if known is not None:  # as many distinct strategies as exist, up to num.
      assert len(distinct) == min(8, known), (p, demos)
    mixed = task.demonstrations(p, rng, 10, mistake_rate=0.3)
    statuses = [task.score(p, d).status for d in mixed]
    assert statuses.count("wrong") == 3 and statuses.count("ok") == 7, (p, mixed)


def test_teacher_prompt_holds_problem_and_solution(task):
  # Privileged self-distillation: only the teacher's prompt shows the solution, and
  # it ends like the student's so both score the same response tokens.
  for p in sample_problems(task, seed=6, num=5):
    teacher = task.teacher_prompt(p)
    assert p.solution in teacher and p.solution not in p.prompt
    assert teacher.endswith("\n" + p.prompt)


def test_every_family_is_covered():
  # Guards the parametrisation: a family registered later is tested too. Test suites may
  # register toy families of their own (defined outside the package); those are not built-ins.
  builtin = {n for n in TASKS.names() if TASKS.get(n).__module__.startswith("explore_rl.")}
  assert builtin == {"arithmetic", "countdown", "grid_paths", "jsonl", "partition",
                     "reasoning_gym"}


def test_problems_carry_their_family(task):
  # Mixtures of worlds score each problem with the task that made it.
  register_family(task)
  for p in sample_problems(task, seed=7, num=3):
    assert p.family == task.family
    assert task_of(p, task) is task
    assert task_of(p) is task  # the registered instance of its family
