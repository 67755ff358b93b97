"""Tagged JSON for trusted Python values sent *to* a sandboxed call (never pickle).

Third-party problem records hold tuples, sets and non-string dict keys, which plain
JSON would silently turn into lists and strings (and a scorer comparing tuples would
then fail). `encode` tags them; `decode` rebuilds them. Only plain data is accepted:
None, bool, int, float, str, list, tuple, set, frozenset, dict. Anything else raises
`TypeError`, and callers fall back to rebuilding the value inside the child.
Results coming back from a child are plain JSON, parsed by the server.
"""
from __future__ import annotations

import math
from typing import Any

_TAG = "__sandbox_codec__"


def encode(value: Any) -> Any:
  """A JSON-serialisable form of `value` that `decode` turns back into an equal value."""
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, int):
    return value
  if isinstance(value, float):
    return value if math.isfinite(value) else {_TAG: "float", "v": repr(value)}
  if isinstance(value, list):
    return [encode(v) for v in value]
  if isinstance(value, tuple):
    return {_TAG: "tuple", "v": [encode(v) for v in value]}
  if isinstance(value, (set, frozenset)):
    kind = "set" if isinstance(value, set) else "frozenset"
    return {_TAG: kind, "v": [encode(v) for v in value]}
  if isinstance(value, dict):
    if all(isinstance(k, str) for k in value) and _TAG not in value:
      return {k: encode(v) for k, v in value.items()}
    return {_TAG: "dict", "v": [[encode(k), encode(v)] for k, v in value.items()]}
  raise TypeError(f"cannot encode a {type(value).__name__} for the sandbox")


def decode(value: Any) -> Any:
  """The inverse of `encode`."""
  if isinstance(value, list):
    return [decode(v) for v in value]
  if not isinstance(value, dict):
    return value
  kind = value.get(_TAG)
  if kind is None:
    return {k: decode(v) for k, v in value.items()}
  items = value["v"]
  if kind == "float":
    return float(items)
  if kind == "tuple":
    return tuple(decode(v) for v in items)
  if kind == "set":
    return {decode(v) for v in items}
  if kind == "frozenset":
    return frozenset(decode(v) for v in items)
  if kind == "dict":
    return {decode(k): decode(v) for k, v in items}
  raise ValueError(f"unknown codec tag {kind!r}")
