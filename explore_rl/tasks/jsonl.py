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

The loader never skips silently and never lets a bad line escape as an exception:
every malformed line (invalid UTF-8, bad JSON, nesting deeper than the parser's
recursion limit, an integer literal over 512 digits, NaN / Infinity, not an object,
no question, no answer, no extractable or a non-finite final answer, blank) is
reported with its file and line number in one `JsonlFormatError`.

Rewards: the response's final answer (`answers.extract_final_answer`, over the last
`MAX_RESPONSE_CHARS` characters, so a long derivation that ends in `\\boxed{}` is
scored by its answer) is checked against the record's with math-verify (0.9.0, the
`worlds` extra), in the sandboxed pool with a deadline: math-verify parses LaTeX with
sympy, which can take seconds on adversarial input (explore_rl/sandbox). `score_many`
checks a batch in one pool round trip. The hand-written normaliser (`answers`) still
gives the signature (the normalised final answer; free-form text has no exact strategy
structure, so use the embedding or LM judges for strategies) and the voted answer,
both in-process and fast, and the load-time check that a solution states its answer.
"""
from __future__ import annotations

import json
import math
import os
import re
from typing import Sequence

import numpy as np

from explore_rl.tasks import answers
from explore_rl.tasks.base import MALFORMED, MAX_RESPONSE_CHARS, TRUNCATED, Problem, Score, Task
from explore_rl.tasks.registry import sandbox_scores, scoring_pool

_LEVEL = re.compile(r"(?:Level\s*)?([1-5])")
MAX_INT_DIGITS = 512
SANDBOX_FN = "explore_rl.tasks.jsonl:sandbox_verify"
WARM_FN = "explore_rl.tasks.jsonl:warm_math_verify"


def sandbox_verify(gold: str, answer: str) -> float:
  """1.0 iff math-verify finds `answer` equal to `gold` (runs in a confined child).

  Both are final answers, not whole texts: each is parsed as `\\boxed{...}`, which
  makes math-verify read it as one LaTeX expression ("2\\sqrt{2}", "(1, 2)", "5\\%").
  """
  from math_verify import parse, verify
  return 1.0 if verify(parse(f"\\boxed{{{gold}}}"), parse(f"\\boxed{{{answer}}}")) else 0.0


# Answers of the usual shapes: verifying them once in the fork server builds the LaTeX
# parser's lazy tables there, so each forked child starts with them (2-5x faster calls).
_WARM_PAIRS = [("15,000", "15000"), ("\\frac{1}{2}", "0.5"), ("2\\sqrt{2}", "\\sqrt{8}"),
               ("(2, 3)", "(2,3)"), ("120^\\circ", "120"), ("-7", "-7.0"), ("x=5", "5"),
               ("\\dfrac{1}{4}", "1/4"), ("3\\pi", "3\\pi"), ("50\\%", "50"),
               ("\\text{(A)}", "A"), ("[1,2)", "[1, 2)"), ("10^{3}", "1000")]


def warm_math_verify() -> None:
  """Run math-verify on `_WARM_PAIRS` (trusted input; in the fork server itself)."""
  for gold, answer in _WARM_PAIRS:
    sandbox_verify(gold, answer)


def self_check() -> float:
  """math-verify's verdict on a known-correct pair (the scoring pool's self-test)."""
  return sandbox_verify("\\frac{1}{2}", "0.5")


def warm_pool() -> None:
  """Warm math-verify in the shared scoring pool (once per pool; replayed on restarts)."""
  scoring_pool().warm(WARM_FN)


class _LineError(ValueError):
  """A reason to reject one line (raised by the JSON hooks)."""


def _parse_int(text: str) -> int:
  if len(text.lstrip("-")) > MAX_INT_DIGITS:
    raise _LineError(f"integer literal of {len(text.lstrip('-'))} digits "
                     f"(limit {MAX_INT_DIGITS})")
  return int(text)


def _parse_float(text: str) -> float:
  value = float(text)
  if not math.isfinite(value):
    raise _LineError(f"number {text[:40]} is not finite")
  return value


def _parse_constant(name: str):
  raise _LineError(f"{name} is not a number (NaN / Infinity are rejected)")


def _non_finite(answer: str) -> bool:
  """Whether `answer` spells a non-finite float ("nan", "inf", "-Infinity", "1e999")."""
  try:
    return not math.isfinite(float(answer.strip()))
  except ValueError:
    return False


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
  if _non_finite(final):
    return None, f"the final answer {final[:40]!r} is not a finite number"
  # The solution must be a correct response: it states the final answer explicitly.
  if "\\boxed" not in solution and "####" not in solution:
    solution = f"{solution.rstrip()}\n#### {final}"
  stated = answers.extract_final_answer(solution)
  if stated is None:
    return None, f"the solution states no final answer (the answer is {final!r})"
  level = obj.get("level")
  match = _LEVEL.fullmatch(str(level).strip()) if level is not None else None
  if level is not None and match is None:
    return None, f"unreadable level {level!r} (expected 1..5 or 'Level k')"
  return {
      "question": question, "answer": final, "solution": solution,
      # MATH levels 1..5 -> difficulty 0, 0.25, ..., 1; 0 when the file gives none.
      "difficulty": (int(match.group(1)) - 1) / 4 if match else 0.0,
      "source": where, "stated": stated,
  }, None


def json_line_object(raw: bytes):
  """(object, None) or (None, reason) for one raw line: the checks of every JSONL reader
  (this one, `preference_pairs.load_pairs`)."""
  try:
    line = raw.decode("utf-8")
  except UnicodeDecodeError as e:
    return None, f"invalid UTF-8 at byte {e.start}"
  if not line.strip():
    return None, "blank line"
  try:
    return json.loads(line, parse_int=_parse_int, parse_float=_parse_float,
                      parse_constant=_parse_constant), None
  except _LineError as e:
    return None, str(e)
  except json.JSONDecodeError as e:
    return None, f"invalid JSON ({e.msg})"
  except RecursionError:
    return None, "invalid JSON (nested too deeply)"
  except ValueError as e:  # e.g. Python's limit on integer string conversion
    return None, f"invalid JSON ({str(e)[:80]})"


def load_jsonl(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[dict]:
  """Records {question, answer, solution, difficulty, source} of every line of `paths`.

  Raises JsonlFormatError listing `path:line: reason` for every malformed line. A
  solution whose stated answer the normaliser does not match to the explicit answer is
  checked with math-verify (in the sandbox) before it is reported as disagreeing.
  """
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  records, errors = [], []
  for path in paths:
    with open(path, "rb") as f:
      for lineno, raw in enumerate(f, start=1):
        where = f"{path}:{lineno}"
        obj, reason = json_line_object(raw)
        if reason is None:
          record, reason = _record(obj, where)
        if reason:
          errors.append((where, reason))
        else:
          records.append(record)
  unsure = [r for r in records if not answers.equivalent(r["stated"], r["answer"])]
  if unsure:
    warm_pool()
  verdicts = sandbox_scores(SANDBOX_FN, [{"gold": r["answer"], "answer": r["stated"]}
                                         for r in unsure])
  for r, verdict in zip(unsure, verdicts):
    if verdict.status != "ok":
      errors.append((r["source"], f"the solution's final answer {r['stated']!r} disagrees "
                                  f"with the answer {r['answer']!r}"))
  bad = {where for where, _ in errors}
  records = [{k: v for k, v in r.items() if k != "stated"} for r in records
             if r["source"] not in bad]
  if errors:
    order = {str(p): i for i, p in enumerate(paths)}
    key = lambda e: (order.get(e[0].rsplit(":", 1)[0], 0), int(e[0].rsplit(":", 1)[1]))
    raise JsonlFormatError([f"{where}: {reason}" for where, reason in sorted(errors, key=key)])
  if not records:
    raise JsonlFormatError([f"{', '.join(map(str, paths))}: no records"])
  return records


class JsonlTask(Task):
  """Problems from JSONL files; reward 1 iff math-verify finds the final answer equal."""

  name = "jsonl"
  sandboxed = True
  answer_form = "a number or a formula"
  math_answers = True

  def __init__(self, path: str | Sequence[str], *, prompt_template: str = "{question}",
               deadline_s: float = 5.0, cpu_s: float = 3.0, memory_mb: int = 1024,
               max_scorer_errors: float = 0.5):
    self.records = load_jsonl(path)
    self.prompt_template = prompt_template
    # max_scorer_errors: the fraction of a batch's calls that may fail before the pool is
    # re-checked and a broken scorer stops the run (tasks/registry.py, sandbox_scores).
    self.limits = {"deadline_s": float(deadline_s), "cpu_s": float(cpu_s),
                   "memory_mb": int(memory_mb), "max_scorer_errors": float(max_scorer_errors)}
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
        family=self.family,
    )

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    return [problem.solution]  # the one written strategy the data holds

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """The same text ending with a wrong final answer (off by one, or a slip): the first
    candidate math-verify rejects."""
    start, end = answers.final_answer_span(response)
    final = response[start:end]
    value = answers.number_value(answers.normalize(final) or "")
    candidates = [str(value + d) for d in (int(rng.choice([-1, 1])), 2)] if value is not None \
        else []
    candidates += [f"{final}+1", f"2({final})", "0"]
    verdicts = self._verify([problem] * len(candidates), candidates)
    wrong = [c for c, v in zip(candidates, verdicts) if v.status == "wrong"] or candidates
    return response[:start] + wrong[0] + response[end:]

  def _parse(self, problem: Problem, response: str) -> str | None:
    # The final answer ends the response: a long derivation is judged by its last part.
    return super()._parse(problem, response[-MAX_RESPONSE_CHARS:])

  def parse(self, problem: Problem, response: str) -> str | None:
    return self.parse_final(problem, answers.extract_final_answer(response) or "")

  def parse_final(self, problem: Problem, final: str) -> str | None:
    return final if answers.normalize(final) else None

  def check(self, problem: Problem, parsed: str) -> bool:
    return self._verify([problem], [parsed])[0].status == "ok"

  def score(self, problem: Problem, response: str, *, truncated: bool = False) -> Score:
    return TRUNCATED if truncated else self.score_many([problem], [response])[0]

  def score_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[Score]:
    """Scores of a batch: extraction here, every final answer verified in one pool call."""
    return score_final_answers(self, problems, responses, **self.limits)

  def _verify(self, problems: Sequence[Problem], finals: Sequence[str]) -> list[Score]:
    return verify_final_answers(problems, finals, **self.limits)

  def parsed_answer(self, problem: Problem, parsed: str) -> str:
    return answers.normalize(parsed)

  def parsed_signature(self, problem: Problem, parsed: str) -> str:
    return answers.normalize(parsed)


def verify_final_answers(problems: Sequence[Problem], finals: Sequence[str],
                         **limits) -> list[Score]:
  """math-verify's verdict on each final answer against its problem's `answer`, in one
  round trip of the sandboxed pool (`limits`: `sandbox_scores`' deadline, cpu, memory)."""
  if not problems:
    return []
  warm_pool()
  gold = problems[0].answer  # a gold answer verifies against itself
  return sandbox_scores(SANDBOX_FN, [{"gold": p.answer, "answer": a}
                                     for p, a in zip(problems, finals)],
                        reference={"gold": gold, "answer": gold}, **limits)


def score_final_answers(task: Task, problems: Sequence[Problem], responses: Sequence[str],
                        **limits) -> list[Score]:
  """Scores of responses whose parse (`task._parse`) is their final answer as text:
  malformed where none parses, else math-verify's verdict (`verify_final_answers`)."""
  parsed = [task._parse(p, r) for p, r in zip(problems, responses, strict=True)]
  rows = [i for i, a in enumerate(parsed) if a is not None]
  verdicts = verify_final_answers([problems[i] for i in rows], [parsed[i] for i in rows],
                                  **limits)
  out = [MALFORMED] * len(problems)
  for i, v in zip(rows, verdicts):
    out[i] = v
  return out
