"""Worlds: procedural task families with safe verifiers and strategy signatures.

`get_task(name, **kwargs)` builds a family registered in `TASKS`;
`sample_problems(task, seed, num, difficulty)` draws a deterministic problem list.
"""
from explore_rl.tasks import arithmetic, countdown, grid_paths, jsonl, partition  # noqa: F401
from explore_rl.tasks.base import DEGENERATE, DEGENERATE_ID, Problem, Score, Task
from explore_rl.tasks.registry import TASKS, get_task, sample_problems

__all__ = [
    "DEGENERATE", "DEGENERATE_ID", "Problem", "Score", "Task", "TASKS", "get_task",
    "sample_problems",
]
