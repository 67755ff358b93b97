"""Worlds: procedural task families with safe verifiers and strategy signatures.

`get_task(name, **kwargs)` builds a family registered in `TASKS` ("name" or
"name:variant", e.g. "reasoning_gym:countdown"); `sample_problems(task, seed, num,
difficulty)` draws a deterministic problem list. Every `Problem` carries its family:
`task_of(problem, default_task)` is the Task that scores it and `score_batch` scores a
batch that mixes worlds (third-party scorers run in the sandbox, explore_rl/sandbox).
"""
from explore_rl.tasks.arithmetic import ArithmeticTask
from explore_rl.tasks.base import DEGENERATE, DEGENERATE_ID, Problem, Score, Task
from explore_rl.tasks.countdown import CountdownTask
from explore_rl.tasks.grid_paths import GridPathsTask
from explore_rl.tasks.jsonl import JsonlTask
from explore_rl.tasks.partition import PartitionTask
from explore_rl.tasks.reasoning_gym import ReasoningGymTask
from explore_rl.tasks.registry import (
    TASKS, family_counts, get_task, register_family, sample_problems, score_batch, scoring_pool,
    task_of)

# Every built-in family, by the name configs use (`config.task`).
for _name, _cls in [("partition", PartitionTask), ("countdown", CountdownTask),
                    ("arithmetic", ArithmeticTask), ("grid_paths", GridPathsTask),
                    ("jsonl", JsonlTask), ("reasoning_gym", ReasoningGymTask)]:
  TASKS.register(_name)(_cls)

__all__ = [
    "DEGENERATE", "DEGENERATE_ID", "Problem", "Score", "Task", "TASKS", "family_counts",
    "get_task", "register_family", "sample_problems", "score_batch", "scoring_pool", "task_of",
]
