"""A safe parser for + - * / expressions over integer literals: never `eval`.

Grammar (recursive descent, usual precedence, left-associative):
  expr   := term (('+' | '-') term)*
  term   := factor (('*' | '/') factor)*
  factor := NUMBER | '(' expr ')'
Limits keep every call bounded: at most MAX_TOKENS tokens, MAX_DEPTH nested
parentheses, MAX_DIGITS digits per literal, and exact `Fraction` values whose
numerator and denominator stay under MAX_BITS bits (else the value is undefined).
There is no power operator, so 9**9**9 or 10^10^10 are simply not in the language.

Trees are tuples: ("num", int) or (op, left, right).
"""
from __future__ import annotations

import re
from fractions import Fraction

MAX_TOKENS = 256
MAX_DEPTH = 32
MAX_DIGITS = 6
MAX_BITS = 256
_TOKEN = re.compile(r"\s*(?:(\d+)|([-+*/()]))")


class _Invalid(Exception):
  """Raised inside the parser only; `parse` turns it into None."""


def _tokenize(text: str) -> list[str]:
  tokens, pos, text = [], 0, text.rstrip()
  while pos < len(text):
    m = _TOKEN.match(text, pos)
    if m is None or len(tokens) >= MAX_TOKENS:
      raise _Invalid
    if m.group(1) is not None and len(m.group(1)) > MAX_DIGITS:
      raise _Invalid
    tokens.append(m.group(1) or m.group(2))
    pos = m.end()
  return tokens


class _Parser:

  def __init__(self, tokens: list[str]):
    self.tokens, self.pos = tokens, 0

  def peek(self) -> str | None:
    return self.tokens[self.pos] if self.pos < len(self.tokens) else None

  def take(self) -> str:
    token = self.peek()
    if token is None:
      raise _Invalid
    self.pos += 1
    return token

  def expr(self, depth: int):
    node = self.term(depth)
    while self.peek() in ("+", "-"):
      node = (self.take(), node, self.term(depth))
    return node

  def term(self, depth: int):
    node = self.factor(depth)
    while self.peek() in ("*", "/"):
      node = (self.take(), node, self.factor(depth))
    return node

  def factor(self, depth: int):
    token = self.take()
    if token == "(":
      if depth >= MAX_DEPTH:
        raise _Invalid
      node = self.expr(depth + 1)
      if self.take() != ")":
        raise _Invalid
      return node
    if token.isdigit():
      return ("num", int(token))
    raise _Invalid


def parse(text: str):
  """The expression tree of `text`, or None when it is not in the grammar or too big."""
  try:
    parser = _Parser(_tokenize(text))
    node = parser.expr(0)
    if parser.peek() is not None:
      return None
    return node
  except _Invalid:
    return None


def evaluate(node) -> Fraction | None:
  """The exact value, or None on division by zero or a value past MAX_BITS."""
  if node[0] == "num":
    return Fraction(node[1])
  left, right = evaluate(node[1]), evaluate(node[2])
  if left is None or right is None:
    return None
  op = node[0]
  if op == "/" and right == 0:
    return None
  out = left + right if op == "+" else left - right if op == "-" else (
      left * right if op == "*" else left / right)
  if max(out.numerator.bit_length(), out.denominator.bit_length()) > MAX_BITS:
    return None
  return out


def leaves(node) -> list[int]:
  """The literals, left to right."""
  return [node[1]] if node[0] == "num" else leaves(node[1]) + leaves(node[2])


def canonical(node) -> str:
  """A string equal exactly for trees equal up to associativity and commutativity.

  Chains of + and - become one sum of signed terms, chains of * and / one product
  of factors and divisors; the members are sorted. So a+(b+c) and (c+b)+a
  coincide, as do a-(b-c) and a+c-b, while a*(b+c) and a*b+a*c (distributivity:
  a different computation) stay different. Inverted members carry a '~'.
  """
  if node[0] == "num":
    return str(node[1])
  group = ("+", "-") if node[0] in ("+", "-") else ("*", "/")
  members: list[str] = []

  def collect(n, inverted: bool):
    if n[0] in group:
      collect(n[1], inverted)
      collect(n[2], inverted != (n[0] == group[1]))
    else:
      members.append(("~" if inverted else "") + canonical(n))

  collect(node, False)
  return f"({group[0]} {' '.join(sorted(members))})"


def render(value: Fraction) -> str:
  if value.denominator == 1:
    return str(value.numerator)
  return f"{value.numerator}/{value.denominator}"
