"""TASKS: task family name -> Task class; configs select families by name.

A family spec is a registered name ("countdown") or, for a class that takes a variant,
"name:variant" ("reasoning_gym:countdown" builds `ReasoningGymTask(dataset="countdown")`;
the class names the keyword in `variant_arg`). Every problem carries the spec of the
family that made it (`Problem.family`), so a batch can mix worlds: `task_of(problem,
default_task)` returns the Task that scores it and `score_batch` scores a mixed batch,
with one sandbox round trip for all third-party scorers of the batch.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import threading
from typing import Mapping, Sequence

import numpy as np

from explore_rl.registry import Registry
from explore_rl.tasks.base import OK, TRUNCATED, WRONG, Problem, Score, Task

TASKS: Registry[type[Task]] = Registry("task")
log = logging.getLogger(__name__)

# Modules the shared scoring pool's fork server imports once (the third-party scorers
# and the task modules whose sandbox entry points call them).
SANDBOX_PRELOAD = ("reasoning_gym", "math_verify", "explore_rl.tasks.reasoning_gym",
                   "explore_rl.tasks.jsonl")
# The pool's start-up self-test: (a scorer of a known-correct answer that must return 1.0,
# the library it needs); a check runs where that library is installed.
SANDBOX_CHECKS = (("explore_rl.tasks.jsonl:self_check", "math_verify"),
                  ("explore_rl.tasks.reasoning_gym:self_check", "reasoning_gym"))


def get_task(name: str, **kwargs) -> Task:
  """The task family `name` (or "name:variant") built with `kwargs`; unknown names list
  the valid ones."""
  base, sep, variant = name.partition(":")
  cls = TASKS.get(base)
  if sep:
    arg = getattr(cls, "variant_arg", None)
    if arg is None:
      raise ValueError(f"task {base!r} takes no variant, got {name!r}")
    if kwargs.get(arg, variant) != variant:
      raise ValueError(f"task {name!r} given {arg}={kwargs[arg]!r} as well")
    kwargs = {**kwargs, arg: variant}
  return TASKS.build(base, **kwargs)


def problem_rng(seed: int, index: int) -> np.random.Generator:
  """The generator of problem `index` of stream `seed`: prefix-stable and resumable."""
  return np.random.default_rng([seed, index])


def sample_problems(task: Task | str, seed: int, num: int,
                    difficulty: float | None = None) -> list[Problem]:
  """`num` problems, deterministic for `seed`; the first k equal sample_problems(.., k, ..)."""
  if isinstance(task, str):
    task = get_task(task)
  return [task.sample(problem_rng(seed, i), difficulty) for i in range(num)]


# -- mixtures of worlds --------------------------------------------------------------------

_FAMILIES: dict[str, Task] = {}
_FAMILIES_LOCK = threading.Lock()


def register_family(task: Task, family: str | None = None) -> None:
  """Make `task_of` return `task` for problems of `family` (default: `task.family`).

  Curricula that build their own tasks (the mixture, with per-family kwargs) register
  them, so the trainer scores each problem with the instance that made it.
  """
  with _FAMILIES_LOCK:
    _FAMILIES[family or task.family] = task


def task_of(problem: Problem, default_task: Task | None = None) -> Task:
  """The Task that scores `problem`: `default_task` when the problem is of its family
  (or carries none), else the registered instance of that family, else one built from
  the family spec with default kwargs (cached)."""
  family = problem.family
  if default_task is not None and (not family or family == default_task.family):
    return default_task
  if not family:
    raise ValueError("a problem without a family needs a default task")
  with _FAMILIES_LOCK:
    task = _FAMILIES.get(family)
  if task is None:
    task = get_task(family)
    with _FAMILIES_LOCK:
      task = _FAMILIES.setdefault(family, task)
  return task


def score_batch(problems: Sequence[Problem], responses: Sequence[str],
                truncated: Sequence[bool] | None = None,
                default_task: Task | None = None) -> list[Score]:
  """Scores of `responses[i]` for `problems[i]`, each with `task_of(problems[i], ...)`.

  Families with a batched scorer (`score_many`, the sandboxed ones) score all their
  rows in one call, so a rollout's third-party scorers run concurrently in the pool.
  """
  if len(problems) != len(responses):
    raise ValueError(f"{len(problems)} problems for {len(responses)} responses")
  truncated = [False] * len(problems) if truncated is None else [bool(t) for t in truncated]
  out: list[Score | None] = [None] * len(problems)
  groups: dict[int, tuple[Task, list[int]]] = {}
  for i, p in enumerate(problems):
    if truncated[i]:
      out[i] = TRUNCATED
      continue
    task = task_of(p, default_task)
    groups.setdefault(id(task), (task, []))[1].append(i)
  for task, rows in groups.values():
    many = getattr(task, "score_many", None)
    if many is not None:
      scores = many([problems[i] for i in rows], [responses[i] for i in rows])
    else:
      scores = [task.score(problems[i], responses[i]) for i in rows]
    for i, s in zip(rows, scores, strict=True):
      out[i] = s
  return out


def scoring_pool(**limits):
  """The process-wide sandbox pool the third-party scorers share (explore_rl/sandbox)."""
  from explore_rl.sandbox import shared_pool  # a subprocess only when a family needs it
  checks = tuple(fn for fn, library in SANDBOX_CHECKS if importlib.util.find_spec(library))
  return shared_pool(preload=SANDBOX_PRELOAD, checks=checks, **limits)


def sandbox_scores(fn: str, calls: Sequence[Mapping], *, partial_credit: bool = False,
                   reference: Mapping | None = None, max_scorer_errors: float = 0.5,
                   **limits) -> list[Score]:
  """`fn(**call)` for each call in the shared scoring pool, as Scores.

  A value >= 1 is correct (OK); below it is wrong with reward 0, or with the clipped
  value when `partial_credit`; a timeout or failure is reward 0 with status "timeout" /
  "error", as is a value that is not a finite number.

  When more than `max_scorer_errors` of the calls fail (timeouts do not count: they are
  the answers'), the pool's self-test runs again with `reference` (the kwargs of a
  known-correct call of `fn`): if the scorer cannot score a correct answer either, it is
  broken, not the answers, and this raises `SandboxUnavailable` (one line) instead of
  scoring the batch 0. Otherwise the failures were the answers' and scoring goes on.
  """
  if not calls:
    return []
  pool = scoring_pool()
  results = pool.map(fn, calls, **limits)
  errors = [r for r in results if r.status == "error"]
  if len(errors) > max_scorer_errors * len(results):
    _stop_if_scorer_broken(pool, fn, errors, len(results), reference)
  out = []
  for r in results:
    value = r.value
    if r.status != "ok":
      out.append(Score(0.0, r.status))
    elif isinstance(value, bool) or not isinstance(value, (int, float)) \
        or not math.isfinite(value):
      out.append(Score(0.0, "error"))
    elif value >= 1.0:
      out.append(OK)
    elif partial_credit:
      out.append(Score(float(min(max(value, 0.0), 1.0)), "wrong"))
    else:
      out.append(WRONG)
  return out


def _stop_if_scorer_broken(pool, fn: str, errors: Sequence, num_calls: int,
                           reference: Mapping | None) -> None:
  from explore_rl.sandbox import SandboxUnavailable
  problem = pool.self_test(extra=() if reference is None else ((fn, reference),))
  if problem:
    raise SandboxUnavailable(f"{len(errors)} of {num_calls} calls of {fn} failed "
                             f"(first: {errors[0].reason}) and {problem}")
  log.warning("%d of %d calls of %s failed (first: %s); the self-test passes, so the answers "
              "made them fail", len(errors), num_calls, fn, errors[0].reason)


def family_counts(problems: Sequence[Problem], rewards: np.ndarray,
                  default_family: str = "") -> dict[str, dict[str, float]]:
  """{family: {"count": problems, "pass_rate": mean of rewards >= 1}} for per-family
  metrics; `rewards` is [B] or [B, N]."""
  rewards = np.asarray(rewards, np.float64).reshape(len(problems), -1)
  out: dict[str, dict[str, float]] = {}
  for family in sorted({p.family or default_family for p in problems}):
    rows = [i for i, p in enumerate(problems) if (p.family or default_family) == family]
    out[family] = {"count": float(len(rows)),
                   "pass_rate": float(np.mean(rewards[rows] >= 1.0))}
  return out

