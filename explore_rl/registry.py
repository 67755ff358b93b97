"""Name -> component registries: configs select objectives, samplers, tasks and judges by name."""
from __future__ import annotations

import os
from typing import Callable, Generic, Iterator, TypeVar

from explore_rl import settings as settings_module
from explore_rl.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
  """A named table of components that rejects unknown names with the valid list.

  >>> ADVANTAGES = Registry("advantage")
  >>> @ADVANTAGES.register("grpo")
  ... def grpo(rewards): ...
  >>> ADVANTAGES.get("grpo")
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._table: dict[str, T] = {}
    self._info: dict[str, dict] = {}

  def register(self, name: str, **info) -> Callable[[T], T]:
    """Decorator adding `name`; `info` is what callers need to know about it
    (e.g. the context fields an advantage estimator takes: `needs=(...)`). The same
    definition registered again replaces itself: a config file that registers its own
    components is executed more than once (the CLI reads it twice)."""
    def add(obj: T) -> T:
      if name in self._table and _origin(self._table[name]) != _origin(obj):
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._table[name] = obj
      self._info[name] = dict(info)
      return obj
    return add

  def info(self, name: str) -> dict:
    """What `register(name, **info)` declared (an unknown name lists the valid ones)."""
    self.get(name)
    return self._info[name]

  def get(self, name: str) -> T:
    try:
      return self._table[name]
    except KeyError:
      raise ConfigError(
          f"unknown {self.kind} {name!r}; valid names: {', '.join(sorted(self._table))}"
      ) from None

  def build(self, name: str, /, **settings):
    """The component `name` built with `settings`, checked first (`settings.build`): a
    missing, unknown or mistyped setting, or a value it rejects, is one ConfigError line."""
    return settings_module.build(self.get(name), settings, f"{self.kind} {name!r}")

  def names(self) -> list[str]:
    return sorted(self._table)

  def __contains__(self, name: str) -> bool:
    return name in self._table

  def __iter__(self) -> Iterator[str]:
    return iter(self.names())


def _origin(obj) -> tuple:
  """Where `obj` was defined: its qualified name and the source files of its code (a
  class's: of its methods)."""
  functions = list(vars(obj).values()) if isinstance(obj, type) else [obj]
  files = {os.path.realpath(f.__code__.co_filename) for f in functions
           if hasattr(f, "__code__")}
  return getattr(obj, "__qualname__", None), tuple(sorted(files))
