"""The pool's self-test: can its children score at all?

Run by `SandboxPool` whenever its fork server starts (and again by callers when many
calls of a batch fail), with trusted input only, in the server's own confined children:

1. every preloaded library this process can import was imported by the server;
2. a child can read the project's source and each of those libraries (a private mount
   or a private home could hide them);
3. each check, a known-correct call, returns a number >= 1.

A library this process cannot import is not configured here and is skipped. The answer
is "" or one line naming what is hidden or missing (docs/design.md, "Sandboxed scoring").
"""
from __future__ import annotations

import concurrent.futures
import importlib.util
import os
from typing import Callable, Mapping, Sequence

# (fn "module:function", kwargs) -> the future of its Result, in one confined child.
Request = Callable[[str, Mapping], concurrent.futures.Future]


def package_root() -> str:
  """The directory that holds the `explore_rl` package (the server's PYTHONPATH)."""
  return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def module_location(name: str) -> str | None:
  """Where this process imports module `name` from (its package directory or file), or
  None when it cannot find it."""
  try:
    spec = importlib.util.find_spec(name)
  except (ImportError, ValueError):
    return None
  if spec is None:
    return None
  if spec.submodule_search_locations:
    return list(spec.submodule_search_locations)[0]
  return spec.origin if spec.origin and os.path.exists(spec.origin) else None


def run(request: Request, *, preload: Sequence[str], isolation: Mapping,
        checks: Sequence[tuple[str, Mapping]], timeout: float) -> str:
  """What stops the server from scoring, "" if nothing (the module docstring's steps).
  `isolation` is the pool's report of the server's start (`preload_failed`, `mounted`)."""
  locations = {"the project's source": package_root()}
  for module in preload:
    where = module_location(module)
    if where is None:
      continue
    locations[module] = where
    failed = isolation["preload_failed"]
    if module in failed:
      return (f"its children cannot import {module} ({failed[module]}), "
              f"which this process imports from {where}")
  result = request("explore_rl.sandbox.server:unreadable",
                   {"paths": sorted(set(locations.values()))}).result(timeout)
  if result.status != "ok":
    return f"its children cannot run Python code of the project ({result.reason})"
  if result.value:
    hidden = ", ".join(f"{p} ({', '.join(k for k, v in locations.items() if v == p)})"
                       for p in result.value)
    return (f"its children cannot read {hidden}: hidden by the sandbox's private mounts "
            f"(mounted: {', '.join(isolation['mounted']) or 'none'}) or unreadable "
            "to its unprivileged uid")
  for fn, kwargs in checks:
    result = request(fn, kwargs).result(timeout)
    value = result.value
    if result.status != "ok" or isinstance(value, bool) \
        or not isinstance(value, (int, float)) or not value >= 1.0:
      got = repr(value) if result.status == "ok" else f"{result.status}: {result.reason}"
      return f"a known-correct answer of {fn} does not score 1.0 ({got})"
  return ""
