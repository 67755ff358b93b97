"""`jsonl`: GSM8K / MATH-style datasets from JSON-lines files.

Each line is an object with `question` and `answer` and/or `solution`:
  GSM8K  {"question": ..., "answer": "... reasoning ...\\n#### 72"}
  MATH   {"problem": ..., "solution": "... \\boxed{\\frac{1}{2}}", "level": "Level 3"}
  plain  {"question": ..., "answer": "42"}
The final answer is the explicit `answer` when it holds no `####`, else what
`answers.extract_final_answer` finds in the answer / solution text. The written
solution (`Problem.solution`) is the solution text (or GSM8K's reasoning answer),
with "#### <answer>" appended when it states no final answer, so it is a correct
response, and these problems serve privileged self-distillation as they are.

The loader never skips silently: every malformed line (bad JSON, not an object,
no question, no answer, no extractable final answer, blank) is reported with its
file and line number in one `JsonlFormatError`.
Answers are matched by `answers.equivalent` (see that module for why an own
normaliser). Free-form text has no exact strategy structure: the signature is
the normalised final answer; use the embedding or LM judges for strategies.
"""
from __future__ import annotations

import json
import os
import re
from typing import Sequence

import numpy as np

from explore_rl.tasks import answers
from explore_rl.tasks.base import Problem, Task
from explore_rl.tasks.registry import TASKS

_LEVEL = re.compile(r"(?:Level\s*)?([1-5])")


class JsonlFormatError(ValueError):
  """Malformed lines, each reported as `path:line: reason`."""

  def __init__(self, errors: list[str]):
    self.errors = errors
    super().__init__(f"{len(errors)} malformed JSONL line(s):\n" + "\n".join(errors))


def _record(obj, where: str) -> tuple[dict | None, str | None]:
  """(record, None) or (None, reason)."""
  if not isinstance(obj, dict):
    return None, f"expected a JSON object, got {type(obj).__name__}"
  question = obj.get("question", obj.get("problem"))
  if not isinstance(question, str) or not question.strip():
    return None, "no 'question' (or 'problem') string"
  answer, solution = obj.get("answer"), obj.get("solution")
  if isinstance(answer, (int, float)) and not isinstance(answer, bool):
    answer = str(answer)
  if not isinstance(answer, (str, type(None))) or not isinstance(solution, (str, type(None))):
    return None, "'answer' / 'solution' must be strings"
  if not (answer or solution):
    return None, "neither 'answer' nor 'solution'"
  if answer and "####" not in answer:
    final = answer.strip()
    solution = solution or f"\\boxed{{{final}}}"
  else:
    solution = solution or answer
    final = answers.extract_final_answer(answer or solution)
  if not final or answers.normalize(final) in (None, ""):
    return None, "no final answer (no '####', '\\boxed{}' or number)"
  # The solution must be a correct response: it states the final answer explicitly.
  if "\\boxed" not in solution and "####" not in solution:
    solution = f"{solution.rstrip()}\n#### {final}"
  stated = answers.extract_final_answer(solution)
  if stated is None or not answers.equivalent(stated, final):
    return None, f"the solution's final answer {stated!r} disagrees with the answer {final!r}"
  level = obj.get("level")
  match = _LEVEL.fullmatch(str(level).strip()) if level is not None else None
  if level is not None and match is None:
    return None, f"unreadable level {level!r} (expected 1..5 or 'Level k')"
  return {
      "question": question, "answer": final, "solution": solution,
      # MATH levels 1..5 -> difficulty 0, 0.25, ..., 1; 0 when the file gives none.
      "difficulty": (int(match.group(1)) - 1) / 4 if match else 0.0,
      "source": where,
  }, None


def load_jsonl(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
  """Records {question, answer, solution, difficulty, source} of every line of `paths`.

  Raises JsonlFormatError listing `path:line: reason` for every malformed line.
  """
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  records, errors = [], []
  for path in paths:
    with open(path, encoding="utf-8") as f:
      for lineno, line in enumerate(f, start=1):
        where = f"{path}:{lineno}"
        if not line.strip():
          errors.append(f"{where}: blank line")
          continue
        try:
          obj = json.loads(line)
        except json.JSONDecodeError as e:
          errors.append(f"{where}: invalid JSON ({e.msg})")
          continue
        record, reason = _record(obj, where)
        if reason:
          errors.append(f"{where}: {reason}")
        else:
          records.append(record)
  if errors:
    raise JsonlFormatError(errors)
  if not records:
    raise JsonlFormatError([f"{', '.join(map(str, paths))}: no records"])
  return records


@TASKS.register("jsonl")
class JsonlTask(Task):
  """Problems from JSONL files; reward 1 iff the final answer is equivalent."""

  name = "jsonl"

  def __init__(self, path: str | Sequence[str], *, prompt_template: str = "{question}"):
    self.records = load_jsonl(path)
    self.prompt_template = prompt_template
    self._levels = np.array([r["difficulty"] for r in self.records])

  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    """Uniform over the records, or over those whose level is nearest `difficulty`."""
    if difficulty is None:
      pool = np.arange(len(self.records))
    else:
      gap = np.abs(self._levels - difficulty)
      pool = np.flatnonzero(gap == gap.min())
    r = self.records[int(rng.choice(pool))]
    return Problem(
        prompt=self.prompt_template.format(question=r["question"]),
        answer=r["answer"],
        solution=r["solution"],
        difficulty=r["difficulty"],
        meta={"source": r["source"]},
    )

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    return [problem.solution]  # the one written strategy the data holds

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """The same text ending with a wrong final answer (off by one, or a slip)."""
    start, end = answers.final_answer_span(response)
    final = response[start:end]
    value = answers.number_value(answers.normalize(final))
    wrong = str(value + int(rng.choice([-1, 1]))) if value is not None else f"{final}+1"
    return response[:start] + wrong + response[end:]

  def parse(self, problem: Problem, response: str) -> str | None:
    final = answers.extract_final_answer(response)
    return None if final is None or not answers.normalize(final) else final

  def check(self, problem: Problem, parsed: str) -> bool:
    return answers.equivalent(parsed, problem.answer)

  def parsed_answer(self, problem: Problem, parsed: str) -> str:
    return answers.normalize(parsed)

  def parsed_signature(self, problem: Problem, parsed: str) -> str:
    return answers.normalize(parsed)
