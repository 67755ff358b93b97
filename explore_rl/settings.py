"""A component's settings checked against its constructor before it is built.

Configs pass settings to components as keyword arguments (`task_kwargs`, `judge_kwargs`,
`rollout.sampler_kwargs`, `curriculum_kwargs`, `optim`). `check_settings` compares them
with the constructor's signature and annotations, so a setting that is missing, unknown
or of the wrong type fails at start-up as one `ConfigError` line naming the component
and the setting, before any work and before the run directory is locked
(docs/design.md, "Configs").

Type checks cover the annotations configs can hold: bool, int, float, str, None, unions,
sequences, mappings, callables, literals and plain classes. Anything else is accepted
here and left to the component.
"""
from __future__ import annotations

import collections.abc
import inspect
import numbers
import types
import typing
from typing import Any, Callable, Mapping

from explore_rl.errors import ConfigError

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping)


def _constructor(component: Callable) -> Callable:
  return component.__init__ if inspect.isclass(component) else component


def _hints(component: Callable) -> dict[str, Any]:
  try:
    return typing.get_type_hints(_constructor(component))
  except Exception:  # noqa: BLE001 - an annotation that does not resolve is not checked
    return {}


def matches(value: Any, hint: Any) -> bool:
  """Whether `value` fits the annotation `hint` (True where the hint is not understood)."""
  if hint is Any or hint is inspect.Parameter.empty:
    return True
  if hint is type(None) or hint is None:
    return value is None
  origin, args = typing.get_origin(hint), typing.get_args(hint)
  if origin in (typing.Union, types.UnionType):
    return any(matches(value, a) for a in args)
  if origin is typing.Literal:
    return value in args
  if hint is bool:  # NumPy's bool_ too
    return isinstance(value, bool) or getattr(value, "dtype", None) == bool
  if hint is int:  # NumPy's integers are Integral
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
  if hint is float:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
  if hint is str:
    return isinstance(value, str)
  base = origin or hint
  if base in _MAPPINGS:
    return hasattr(value, "keys")  # dicts and ml_collections' ConfigDict
  if base in _SEQUENCES:
    return isinstance(value, (list, tuple))
  if base is collections.abc.Callable:
    return callable(value)
  if inspect.isclass(base) and not args:
    return isinstance(value, base)
  return True


def check_settings(component: Callable, settings: Mapping[str, Any], what: str) -> None:
  """Raise `ConfigError` (one line) when `settings` cannot build `component`: a required
  setting missing, an unknown one (unless it takes **kwargs), or one of the wrong type.
  `what` names the component in the message, e.g. "task 'jsonl'"."""
  try:
    params = inspect.signature(component).parameters
  except (TypeError, ValueError):  # a builtin without a signature: nothing to check
    return
  named = {n: p for n, p in params.items()
           if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
  listed = ", ".join(named) or "none"
  for name, p in named.items():
    if p.default is p.empty and name not in settings:
      raise ConfigError(f"{what} needs the setting {name!r} (its settings: {listed})")
  if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
    unknown = sorted(set(settings) - set(named))
    if unknown:
      raise ConfigError(f"{what} has no setting {', '.join(map(repr, unknown))} "
                        f"(its settings: {listed})")
  hints = _hints(component)
  for name, value in settings.items():
    if name in named and name in hints and not matches(value, hints[name]):
      shown = getattr(hints[name], "__name__", None) or str(hints[name]).replace("typing.", "")
      raise ConfigError(f"{what}: setting {name!r} must be {shown}, got {value!r} "
                        f"({type(value).__name__})")


def build(component: Callable, settings: Mapping[str, Any], what: str) -> Any:
  """`component(**settings)` after `check_settings`; a `ValueError` the component raises
  about a value (a bad combination of settings, a malformed data file) becomes a
  `ConfigError` with its message, which the CLI prints without a traceback."""
  check_settings(component, settings, what)
  try:
    return component(**settings)
  except ConfigError:
    raise
  except ValueError as e:  # all its lines: a data file's bad lines are listed one per line
    raise ConfigError(f"{what}: {str(e).strip() or type(e).__name__}") from None
