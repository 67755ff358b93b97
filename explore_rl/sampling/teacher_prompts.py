"""The privileged (teacher) prompts of problems, encoded: `Task.teacher_prompt(problem)`, the
solution shown as a hint, for samplers that aggregate with a teacher and for the
self-distillation term of the update."""
from __future__ import annotations

from typing import Sequence

from explore_rl.models.tokenizer import encode_prompts
from explore_rl.tasks.base import Problem, Task
from explore_rl.tasks.registry import task_of

# "hint, use it only as a hint: " + "\n" + BOS (`Task.teacher_prompt`) and some slack.
_HINT_OVERHEAD = 48


def default_teacher_prompt_len(prompt_len: int, max_new_tokens: int) -> int:
  """Slots for a privileged prompt: the plain prompt, a solution as long as a response, the
  hint's wording. `teacher_prompt_len` (sampler and `objective.distill`) overrides it."""
  return prompt_len + max_new_tokens + _HINT_OVERHEAD


def encode_teacher_prompts(tokenizer, problems: Sequence[Problem], length: int,
                           task: Task | None = None):
  """The privileged prompts `task_of(p, task).teacher_prompt(p)` of `problems`, left-padded:
  (int32 [B, length], bool [B, length]) NumPy arrays."""
  prompts = [task_of(p, task).teacher_prompt(p) for p in problems]
  try:
    return encode_prompts(tokenizer, prompts, length)
  except ValueError as e:
    raise ValueError(f"teacher prompt: {e}; set teacher_prompt_len (rollout.sampler_kwargs or "
                     "objective.distill) above it") from None
