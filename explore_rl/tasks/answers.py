"""Final-answer extraction and a fast normaliser for GSM8K / MATH-style answers.

Rewards of the `jsonl` family come from math-verify, run in the sandboxed pool with a
deadline (see jsonl.py): it does symbolic algebra ("2\\sqrt{2}" equals "\\sqrt{8}"),
but sympy-based parsing of adversarial LaTeX can take seconds and math-verify bounds
it with `signal.alarm`, which only works in a main thread, so it never runs in the
trainer's process. This module is what stays in-process, fast and bounded:

- Extraction, in order: the last `\\boxed{...}` (balanced braces), the text after
  the last `####` (GSM8K), else the last number in the text.
- `normalize`: a canonical string in the spirit of the MATH paper's `is_equiv`
  (Hendrycks et al., arXiv 2103.03874) with exact `Fraction` comparison of numeric
  atoms: "0.5", "1/2", "\\frac12", "\\dfrac{1}{2}" and "$\\frac{1}{2}$." normalise
  alike. It gives strategy signatures and majority-vote answers (which need a
  canonical key, not a pairwise check) and the loader's quick check that a solution
  states its record's answer (math-verify decides the cases it does not match). It
  does no symbolic algebra: "2\\sqrt{2}" and "\\sqrt{8}" normalise differently.
"""
from __future__ import annotations

import re
from fractions import Fraction

from explore_rl.tasks.expression import render

MAX_ANSWER_CHARS = 512
_NUMBER = r"-?(?:\d{1,64}(?:\.\d{1,64})?|\.\d{1,64})"
_DECIMAL = re.compile(_NUMBER)
_SLASH = re.compile(rf"({_NUMBER})/({_NUMBER})")
_TEX_FRAC = re.compile(r"(-?)\\frac\{(-?\d{1,64})\}\{(-?\d{1,64})\}")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d{1,64})?")
_LAST_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?")
_WRAPPERS = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\{([^{}]*)\}")
_BOXED_BARE = re.compile(r" (\S+)")
_DROP = ("\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ",
         "^\\circ", "^{\\circ}", "\\%", "%", "\\$", "$")


def final_answer_span(text: str) -> tuple[int, int] | None:
  """[start, end) of the final answer in `text`, or None when there is none."""
  k = text.rfind("\\boxed")
  if k >= 0:
    j = k + len("\\boxed")
    if text[j:j + 1] == "{":
      depth = 0
      for end in range(j, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
          return (j + 1, end) if end > j + 1 else None
      return None
    m = _BOXED_BARE.match(text, j)  # "\boxed 5"
    return m.span(1) if m else None
  k = text.rfind("####")
  if k >= 0:
    line_end = text.find("\n", k)
    line_end = len(text) if line_end < 0 else line_end
    start = k + 4 + (len(text[k + 4:line_end]) - len(text[k + 4:line_end].lstrip()))
    end = start + len(text[start:line_end].rstrip())
    return (start, end) if end > start else None
  last = None
  for last in _LAST_NUMBER.finditer(text):
    pass
  return last.span() if last else None


def extract_final_answer(text: str) -> str | None:
  span = final_answer_span(text)
  return None if span is None else text[span[0]:span[1]]


def number_value(atom: str) -> Fraction | None:
  """The exact value of a plain numeric atom: integer, decimal, a/b or \\frac{a}{b}."""
  if _DECIMAL.fullmatch(atom):
    return Fraction(atom)
  m = _SLASH.fullmatch(atom)
  if m and Fraction(m.group(2)) != 0:
    return Fraction(m.group(1)) / Fraction(m.group(2))
  m = _TEX_FRAC.fullmatch(atom)
  if m and int(m.group(3)) != 0:
    return Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)
  return None


def _split_top_level(s: str) -> list[str]:
  """Split at commas outside braces, brackets and parentheses (tuple members)."""
  parts, depth, start = [], 0, 0
  for i, c in enumerate(s):
    depth += 1 if c in "{([" else -1 if c in "})]" else 0
    if c == "," and depth == 1 and s[0] in "([":
      parts.append(s[start:i])
      start = i
  parts.append(s[start:])
  return parts


def normalize(answer: str) -> str | None:
  """A canonical string: equal strings mean equivalent answers; None if too long."""
  if len(answer) > MAX_ANSWER_CHARS:
    return None
  s = answer.strip().rstrip(".")
  for token in _DROP:
    s = s.replace(token, "")
  s = _WRAPPERS.sub(r"\1", s)
  s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
  s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
  s = re.sub(r"\\sqrt(\d+)", r"\\sqrt{\1}", s)
  s = re.sub(r"\s+", "", s)
  s = re.sub(r"^[a-zA-Z]=", "", s)  # "x = 5" -> "5"
  if _THOUSANDS.fullmatch(s):
    s = s.replace(",", "")
  out = []
  for part in _split_top_level(s):
    lead = part[:1] if part[:1] in "([," else ""
    tail = part[-1:] if part[-1:] in ")]" and len(part) > len(lead) else ""
    atom = part[len(lead):len(part) - len(tail)]
    value = number_value(atom)
    out.append(lead + (atom if value is None else render(value)) + tail)
  return "".join(out)


def equivalent(a: str, b: str) -> bool:
  na = normalize(a)
  return na is not None and na != "" and na == normalize(b)
