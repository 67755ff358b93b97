"""Errors that are the user's to fix: the CLI prints their one-line message and exits 2.

Anything raised as `UserError` (or a subclass) means "the command or config is
wrong, here is the fix", never "explore_rl has a bug": no traceback is shown.
"""


class UserError(Exception):
  """A mistake in the command line, the config or the run directory."""


class ConfigError(UserError, ValueError):
  """An invalid config value or name (also a ValueError, for callers that catch those)."""
