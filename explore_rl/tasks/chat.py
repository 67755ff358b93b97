"""Chat-shaped problems: a task's problem as an instruct model's user message, and the
final answer read back out of a chat reply.

A policy whose tokenizer renders prompts through its chat template (`chat_prompts`)
gets every problem as `chat_problem(task, problem)`: the family's question in words
(`Task.question`), then `INSTRUCTION` (reason, then the final answer after `####` or in
`\\boxed{}`). The problem is marked `chat`, so every family scores it by the final
answer of the reply (`final_answer`) instead of by its own strict response format
(docs/design.md, "Chat-shaped tasks").
"""
from __future__ import annotations

import dataclasses
import re

from explore_rl.tasks.answers import MAX_ANSWER_CHARS, extract_final_answer

INSTRUCTION = ("Think step by step, then write the final answer on the last line as "
               "'#### <answer>' (or in \\boxed{{}}). The final answer is {what}.")

# "The answer is 12", "Final answer: 12", "**Answer:** 12" (markdown stripped first).
_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:|=)\s*:?\s*(.{1,512})",
                        re.IGNORECASE)
_MARKDOWN = re.compile(r"\*\*|__|`")
_TAGGED = re.compile(r"<answer>(.{0,4096}?)</answer>", re.DOTALL)
_MATH_DELIMS = re.compile(r"^\$+|\$+$|^\\\(|\\\)$|^\\\[|\\\]$")


def chat_problem(task, problem):
  """`problem` as a chat user message (its question, then `INSTRUCTION`), marked `chat`;
  unchanged when it already is one."""
  if problem.chat:
    return problem
  prompt = f"{task.question(problem).strip()}\n\n{INSTRUCTION.format(what=task.answer_form)}"
  return dataclasses.replace(problem, prompt=prompt, chat=True)


def _clean(answer: str) -> str | None:
  """The answer without markdown, math delimiters, a trailing period or a leading '='."""
  s = _MARKDOWN.sub("", answer).strip().rstrip(".").strip()
  s = _MATH_DELIMS.sub("", s).strip().rstrip(".").lstrip("=").strip()
  return s if s and len(s) <= MAX_ANSWER_CHARS else None


def left_side(final: str) -> str:
  """An equation's left side without spaces: "5 + 5 + 2 = 12" -> "5+5+2" (replies that
  restate the target after the expression)."""
  return "".join(final.split("=", 1)[0].split())


def final_answer(reply: str, *, numeric: bool = False) -> str | None:
  """The final answer of a chat reply, or None.

  In order: the last `\\boxed{...}`, the text after the last `####`, the last
  `<answer>...</answer>`, the rest of the last line saying "answer is" / "answer:";
  with `numeric`, else the last number. Markdown emphasis, `$...$` and a trailing
  period are dropped. Bounded: linear scans and regular expressions with length limits.
  """
  if "\\boxed" in reply or "####" in reply:
    span = extract_final_answer(reply)
    return None if span is None else _clean(span)
  tagged = _TAGGED.findall(reply)
  if tagged:
    return _clean(tagged[-1])
  said = None
  for line in _MARKDOWN.sub("", reply).splitlines():
    m = _ANSWER_IS.search(line)
    if m:
      said = m.group(1)
  if said is not None:
    return _clean(said)
  return _clean(extract_final_answer(reply) or "") if numeric else None
