"""The task protocol shared by every world (task family).

A task family samples `Problem`s from a NumPy generator with a difficulty knob in
[0, 1], scores a response text (`Score`: reward in [0, 1] + parse status), gives a
response's strategy signature (a hashable value, or `DEGENERATE`), extracts the
final answer for majority votes, and writes SFT demonstrations that show several
*different* correct strategies plus a fraction of realistic mistakes.

Families implement the parsing half (`parse`, `check`, `parsed_answer`,
`parsed_signature`) and the generation half (`sample`, `correct_responses`,
`mistake`); the `Task` base class derives score / signature / extract_answer /
demonstrations from them, so every family shares the same guards (length limit,
truncation) and the same demonstration mix. Parsers are grammars or regular
expressions over bounded input with explicit size limits: model output is never
`eval`-ed.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, Hashable, Mapping

import numpy as np

from explore_rl.tasks import chat

# A response's strategy signature when it has no meaningful strategy (empty,
# unparseable, repeated junk). Judges map it to the reserved cluster id -1,
# which set objectives do not count as a distinct strategy.
DEGENERATE = "degenerate"
DEGENERATE_ID = -1

# "timeout" / "error": a sandboxed third-party scorer overran its deadline or failed
# (explore_rl/sandbox); such responses score 0.
STATUSES = ("ok", "wrong", "malformed", "truncated", "timeout", "error")
# Longer responses are malformed without being parsed: keeps every verifier call
# bounded in time whatever the model emits.
MAX_RESPONSE_CHARS = 4096


@dataclasses.dataclass(frozen=True)
class Problem:
  """One sampled problem.

  prompt: what the model is conditioned on.
  answer: the canonical final answer (string form).
  solution: a reference response, a complete correct text the model could emit.
  difficulty: the knob in [0, 1] it was sampled at (datasets: their own level).
  meta: family-specific, JSON-serialisable data the verifier needs.
  family: the family that made it, as `get_task` spells it ("countdown",
    "reasoning_gym:countdown"); `explore_rl.tasks.task_of` finds the Task that scores
    it, so one batch can mix worlds. "" (the default) means the run's configured task.
  chat: the prompt is a chat user message (`tasks.chat.chat_problem`) and a response a
    chat reply, scored by its final answer (`Task.parse_final`).
  """
  prompt: str
  answer: str
  solution: str
  difficulty: float
  meta: Mapping
  family: str = ""
  chat: bool = False


@dataclasses.dataclass(frozen=True)
class Score:
  reward: float  # in [0, 1]
  status: str  # one of STATUSES


OK = Score(1.0, "ok")
WRONG = Score(0.0, "wrong")
MALFORMED = Score(0.0, "malformed")
TRUNCATED = Score(0.0, "truncated")


class Task(abc.ABC):
  """A task family. Subclasses set `name` and `default_difficulty`."""

  name: str
  default_difficulty: float = 0.5
  # Chat-shaped problems (tasks/chat.py): what a reply's final answer is (the instruction
  # says it), and whether it is a number or formula (then a reply's last number counts
  # when it marks no final answer; the math families check it with math-verify).
  answer_form: str = "the answer alone"
  math_answers: bool = False

  @property
  def family(self) -> str:
    """The family name its problems carry (`Problem.family`): `name` unless a family
    takes a variant (e.g. reasoning_gym's dataset)."""
    return self.name

  # --- generation -------------------------------------------------------------

  @abc.abstractmethod
  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    """A problem at `difficulty` (None: `default_difficulty`), deterministic for `rng`."""

  @abc.abstractmethod
  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    """Up to `num` correct responses with pairwise distinct signatures (>= 1)."""

  @abc.abstractmethod
  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """A realistic wrong variant of the correct `response` (scores 0)."""

  def resolve_difficulty(self, difficulty: float | None) -> float:
    """`difficulty` clipped to [0, 1]; None means `default_difficulty`."""
    return self.default_difficulty if difficulty is None else float(np.clip(difficulty, 0, 1))

  # --- parsing ----------------------------------------------------------------

  @abc.abstractmethod
  def parse(self, problem: Problem, response: str) -> Any | None:
    """The parsed response, or None when it does not follow the format."""

  @abc.abstractmethod
  def check(self, problem: Problem, parsed: Any) -> bool:
    """Whether a parsed response solves the problem."""

  @abc.abstractmethod
  def parsed_answer(self, problem: Problem, parsed: Any) -> str | None:
    """The final answer a parsed response arrives at (string form), if any."""

  @abc.abstractmethod
  def parsed_signature(self, problem: Problem, parsed: Any) -> Hashable:
    """The strategy of a parsed response; equal exactly for equivalent strategies."""

  # --- the protocol -----------------------------------------------------------

  def _parse(self, problem: Problem, response: str) -> Any | None:
    if len(response) > MAX_RESPONSE_CHARS:
      return None
    if problem.chat:
      final = chat.final_answer(response, numeric=self.math_answers)
      return None if final is None else self.parse_final(problem, final)
    return self.parse(problem, response)

  # --- chat-shaped problems (tasks/chat.py) -------------------------------------

  def question(self, problem: Problem) -> str:
    """The problem in words, for an instruct model's user message; default the prompt."""
    return problem.prompt

  def parse_final(self, problem: Problem, final: str) -> Any | None:
    """The final answer extracted from a chat reply, parsed as `parse` parses a response
    (None: malformed); default `parse` of the answer alone."""
    return self.parse(problem, final)

  def score(self, problem: Problem, response: str, *, truncated: bool = False) -> Score:
    """Reward 1 for a correct response; status ok / wrong / malformed / truncated."""
    if truncated:
      return TRUNCATED
    parsed = self._parse(problem, response)
    if parsed is None:
      return MALFORMED
    return OK if self.check(problem, parsed) else WRONG

  def signature(self, problem: Problem, response: str) -> Hashable:
    """The strategy signature, `DEGENERATE` when the response does not parse.

    Wrong but well-formed responses keep their signature: Poly-EPO (arXiv
    2604.17654) counts a novel incorrect strategy as a distinct cluster.
    """
    parsed = self._parse(problem, response)
    return DEGENERATE if parsed is None else self.parsed_signature(problem, parsed)

  def extract_answer(self, problem: Problem, response: str) -> str | None:
    """The final answer the response arrives at, for majority votes; None if unparseable."""
    parsed = self._parse(problem, response)
    return None if parsed is None else self.parsed_answer(problem, parsed)

  def demonstrations(self, problem: Problem, rng: np.random.Generator, num: int, *,
                     mistake_rate: float = 0.1) -> list[str]:
    """`num` SFT responses: distinct correct strategies (cycled when fewer exist)
    with round(mistake_rate * num) of them, at random positions, replaced by mistakes."""
    correct = self.correct_responses(problem, rng, num)
    out = [correct[i % len(correct)] for i in range(num)]
    num_mistakes = int(round(mistake_rate * num))
    for i in rng.choice(num, size=num_mistakes, replace=False):
      out[i] = self.mistake(problem, rng, out[i])
    return out

  def teacher_prompt(self, problem: Problem) -> str:
    """The privileged prompt for self-distillation: the problem plus its written solution.

    The teacher scores the student's tokens under this prompt (docs/algorithms.md,
    "Self-distillation"); every family fills `Problem.solution`, so each one can serve.
    """
    return f"hint, use it only as a hint: {problem.solution}\n{problem.prompt}"

  def num_strategies(self, problem: Problem) -> int | None:
    """The exact number of distinct correct strategies, None where unknown."""
    del problem
    return None
