"""What the LM judge asks and how its reply is read (Poly-EPO, arXiv 2604.17654, §3).

All non-blank responses of a prompt go into one chat request, numbered from 1
by their position in the group; the model groups them by strategy (macro
approach and micro key steps) and replies with JSON
  {"1": {"strategy": "...", "cluster_id": int}, "2": ..., ...}
where cluster_id -1 is reserved for degenerate responses. `parse_reply`
tolerates code fences and surrounding prose, and raises `ReplyError` with
kind "malformed" (no usable JSON, bad ids) or "partial" (responses missing).
It reads any text in linear time and never raises `RecursionError`: the reply
comes from a server, so hostile input must only ever cost a fallback.
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

from explore_rl.tasks.base import DEGENERATE_ID

SYSTEM = ("You compare answers to the same problem and group them by problem-solving "
          "strategy. You reply with JSON only.")

INSTRUCTION = """\
Below are {count} responses to the same problem. Group them into clusters of responses \
that use the same strategy.

Judge the strategy, not the wording and not the correctness. Two responses share a cluster \
when they follow the same overall approach (macro strategy, e.g. algebra vs. case analysis \
vs. working backwards) AND the same key steps (micro strategy, e.g. the same decomposition, \
order of operations or auxiliary construction). Responses that differ only in presentation, \
variable names or arithmetic slips share a cluster.

A response is degenerate when it has no meaningful strategy: gibberish, endless repetition, \
or text unrelated to the problem. Give every degenerate response cluster_id {degenerate}. \
Number the other clusters 0, 1, 2, ...

Reply with only a JSON object holding one entry per response, keyed by the response number:
{{"<number>": {{"strategy": "<a few words>", "cluster_id": <integer>}}, ...}}

<problem>
{prompt}
</problem>

{responses}"""

_INTEGER = re.compile(r"-?\d+")
# Where a JSON object can start: a brace, then a key or the closing brace. Skips
# the braces of prose and LaTeX (\frac{a}{b}) without a decode attempt.
_OBJECT_START = re.compile(r'\{[ \t\n\r]*["}]')
_ATTEMPT_COST = 64  # Characters charged per attempt at least: an attempt has a fixed cost.


class ReplyError(ValueError):
  """An unusable judge reply; `kind` is "malformed" or "partial"."""

  def __init__(self, kind: str, message: str):
    super().__init__(message)
    self.kind = kind


def build_messages(prompt: str, numbered: Sequence[tuple[int, str]], *,
                   max_response_chars: int) -> list[dict[str, str]]:
  """Chat messages asking to cluster `numbered` (1-based number, text) responses."""

  def clip(text: str) -> str:
    return text if len(text) <= max_response_chars else text[:max_response_chars] + " [...]"

  body = "\n\n".join(f'<response number="{k}">\n{clip(t)}\n</response>' for k, t in numbered)
  user = INSTRUCTION.format(count=len(numbered), degenerate=DEGENERATE_ID, prompt=prompt,
                            responses=body)
  return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _first_dict_naming(obj: Any, keys: Sequence[str]) -> dict[str, Any] | None:
  """The first dict (in document order) inside `obj` that names one of `keys`, or None.

  Iterative, so a decoded object's depth cannot overflow the stack.
  """
  wanted, stack = frozenset(keys), [obj]
  while stack:
    node = stack.pop()
    if isinstance(node, dict):
      if not wanted.isdisjoint(node):  # Iterates the dict: linear in the tree overall.
        return node
      stack.extend(reversed(list(node.values())))
    elif isinstance(node, list):
      stack.extend(reversed(node))
  return None


def _decode_at(decoder: json.JSONDecoder, text: str, start: int,
               budget: int) -> tuple[Any, int, int]:
  """(object or None, end, characters read) of decoding the JSON value at text[start].

  Decodes a window text[start:start + size], growing 4x while the failure may be
  the window's end (an unterminated string, an error near the end). Windows
  matter: a `JSONDecodeError` counts the lines of the whole string before its
  position, so decoding `text` in place costs O(start) per failed attempt, and
  a reply with many stray braces costs O(n²) (a 240 KB reply: seconds).
  """
  size, read = 256, 0
  while read <= budget:
    window = text[start:start + size]
    whole = start + size >= len(text)
    try:
      obj, end = decoder.raw_decode(window)
      return obj, start + end, read + end
    except json.JSONDecodeError as e:
      if whole or (e.pos < len(window) - 64 and not e.msg.startswith("Unterminated string")):
        return None, start + 1, read + e.pos + 1
      read += len(window)
    except RecursionError:  # Nested deeper than the decoder's limit within the window.
      return None, start + 1, read + len(window)
    size *= 4
  return None, start + 1, read


def extract_json_object(text: str, keys: Sequence[str] = (),
                        *, work_factor: int = 8) -> dict[str, Any] | None:
  """The first JSON object in `text` that names one of `keys` (else the first one), or None.

  Skips code fences, prose and JSON echoed before the answer (e.g. in a
  reasoning model's thoughts), and finds an answer nested in a wrapper object
  ({"clusters": {"1": ...}}).

  Runs in time linear in len(text), whatever the text: each attempt decodes a
  window from its brace (see `_decode_at`), a decoded object is searched as a
  Python tree and then skipped instead of decoded again from each inner brace,
  and the characters read by all attempts (at least 64 per attempt) are capped
  at `work_factor` · len(text) + 64 KiB; when that budget runs out the search
  returns what it has found. Nesting deeper than the decoder's recursion limit is a failed attempt,
  never a `RecursionError`.
  """
  decoder = json.JSONDecoder()
  budget = work_factor * len(text) + 65536
  first, pos = None, 0
  while budget > 0:
    match = _OBJECT_START.search(text, pos)
    if match is None:
      break
    obj, pos, read = _decode_at(decoder, text, match.start(), budget)
    budget -= max(read, _ATTEMPT_COST)
    if obj is None:
      continue
    found = _first_dict_naming(obj, keys) if keys else None
    if found is not None:
      return found
    if first is None and isinstance(obj, dict):
      first = obj
  return first


def _cluster_id(entry: Any) -> int | None:
  """The integer cluster id of one reply entry ({"cluster_id": ...} or a bare id)."""
  value = entry.get("cluster_id") if isinstance(entry, dict) else entry
  if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
    value = int(value)
  if isinstance(value, int) and not isinstance(value, bool) and value >= DEGENERATE_ID:
    return value
  return None


def parse_reply(text: str, numbers: Sequence[int]) -> dict[int, int]:
  """Maps each response number to the judge's raw cluster id (-1 = degenerate)."""
  obj = extract_json_object(text, [str(n) for n in numbers])
  if obj is None:
    raise ReplyError("malformed", f"no JSON object in the reply: {text[:200]!r}")
  ids, missing = {}, []
  for number in numbers:
    if str(number) not in obj:
      missing.append(number)
      continue
    cluster_id = _cluster_id(obj[str(number)])
    if cluster_id is None:
      raise ReplyError("malformed", f"response {number}: bad cluster_id {obj[str(number)]!r}")
    ids[number] = cluster_id
  if len(missing) == len(numbers) and numbers:
    raise ReplyError("malformed", f"the JSON names none of the responses: {text[:200]!r}")
  if missing:
    raise ReplyError("partial", f"no cluster for responses {missing}")
  return ids
