"""A run directory has one owner and one config.

`prepare_run_dir` is what a trainer calls before it touches a workdir:

1. Secrets: a config key named like a credential (`api_key`, `token`,
   `secret`, `password`, ...) with a value is refused, since config.json keeps
   the config in plain text; keys are read from the environment instead
   (`judge_kwargs.api_key_env="OPENAI_API_KEY"`).
2. One owner: an exclusive `fcntl.flock` on `workdir/.lock`, held until the
   returned handle is closed (or the process dies: the kernel drops it). A
   second process on the same workdir fails at once, instead of interleaving
   its metrics and checkpoints with the first (steps 1,2,3,1,2,3,4,4).
3. One config: when the workdir already holds config.json (a resume), the new
   config is compared with it before anything is written. A different model
   (the model config, `model`, `model_overrides`, `task`, `task_kwargs`, `hf`)
   would not load the checkpoints, or would train on other data: always refused.
   A different method (the trainer, objective, rollout, learner, optimizer,
   judge, ...) is refused unless `allow_method_change`. Keys that only say how
   long or how visibly the run goes (`SAFE_TO_CHANGE`) may change.
4. Only then config.json and model.json are (re)written, atomically and with
   mode 0600; `write=False` leaves that to `RunDir.write_run_files()`, for a
   trainer that writes only once its restore has succeeded.

All refusals are `UserError`s with one line naming the differing keys and the
fix. The lock needs a local filesystem (flock is advisory and not reliable on
every network filesystem). See docs/design.md, "Run directories".

In a multi-process run (explore_rl/distributed.py) only process 0 locks the workdir
and writes the run files; every process checks a resume against the stored config.
"""
from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import re
from typing import Any, Iterator

from explore_rl.distributed import is_primary
from explore_rl.errors import UserError

LOCK_FILE = ".lock"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"

# Keys that may change when a run resumes: how long it runs, how often it
# evaluates / saves / logs, where it runs, and how the judge's transport behaves.
SAFE_TO_CHANGE = ("total_steps", "eval_every", "checkpoint_every", "keep_checkpoints",
                  "max_consecutive_skips", "log_clusters", "progress", "tensorboard",
                  "eval.*", "mesh.*", "judge_kwargs.timeout_s", "judge_kwargs.deadline_s",
                  "judge_kwargs.max_retries", "judge_kwargs.backoff_s",
                  "judge_kwargs.max_backoff_s", "judge_kwargs.max_concurrency",
                  "judge_kwargs.max_reply_bytes", "judge_kwargs.base_url")
# Keys that decide the parameters' shapes or what the model is trained on.
MODEL_KEYS = ("model.*", "model_overrides.*", "task", "task_kwargs.*", "hf.*")
# A config key named like a credential. `api_key_env` (a variable's name) is fine.
# A bare `token` is one too, but not `eos_token` or `max_tokens`.
SECRET_KEY = re.compile(
    r"(^|_)(api_?key|secret(_?key)?|password|passwd|passphrase|private_?key|credentials?"
    r"|(access|auth|bearer|api|hf|refresh|session)_?token)$|^token$", re.IGNORECASE)


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
  """(dotted key, leaf value) pairs of nested mappings; lists are leaves."""
  if isinstance(node, dict):
    if not node and prefix:
      yield prefix, {}
    for key, value in node.items():
      yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
  else:
    yield prefix, node


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
  """Whether dotted `key` is one of `patterns` ("a.*": a itself or anything under it)."""
  for pattern in patterns:
    if pattern.endswith(".*"):
      if key == pattern[:-2] or key.startswith(pattern[:-1]):
        return True
    elif key == pattern:
      return True
  return False


def config_as_json(config: Any) -> str:
  """The text config.json holds: what `explore_rl.training.policy_loader` always wrote."""
  if hasattr(config, "to_json_best_effort"):
    return config.to_json_best_effort(indent=2, sort_keys=True)
  return json.dumps(config, indent=2, sort_keys=True, default=str)


def find_secrets(config: Any) -> list[str]:
  """Dotted keys of `config` named like a credential that hold a non-empty value."""
  plain = json.loads(config_as_json(config))
  found = []

  def walk(node, prefix):
    if isinstance(node, dict):
      for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if SECRET_KEY.search(str(key)) and value not in (None, "", {}, []):
          found.append(dotted)
        else:
          walk(value, dotted)
    elif isinstance(node, list):
      for i, value in enumerate(node):
        walk(value, f"{prefix}[{i}]")

  walk(plain, "")
  return found


def _short(value: Any) -> str:
  text = json.dumps(value, sort_keys=True, default=str)
  return text if len(text) <= 40 else text[:37] + "..."


def _is_secret(dotted: str) -> bool:
  return bool(SECRET_KEY.search(dotted.rsplit(".", 1)[-1].rsplit(":", 1)[-1]))


def _describe(diffs: list[tuple[str, Any, Any]], limit: int = 4) -> str:
  """`key: old -> new; ...` for a message; values of secret-named keys are not shown."""
  shown = [f"{key}: <redacted>" if _is_secret(key) else f"{key}: {_short(old)} -> {_short(new)}"
           for key, old, new in diffs[:limit]]
  if len(diffs) > limit:
    shown.append(f"and {len(diffs) - limit} more")
  return "; ".join(shown)


_MISSING = "<unset>"


def config_differences(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
  """(dotted key, stored value, new value) for every leaf that differs, sorted by key."""
  old_flat, new_flat = dict(_flatten(old)), dict(_flatten(new))
  keys = sorted(set(old_flat) | set(new_flat))
  return [(k, old_flat.get(k, _MISSING), new_flat.get(k, _MISSING)) for k in keys
          if old_flat.get(k, _MISSING) != new_flat.get(k, _MISSING)]


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"{path} is unreadable ({type(e).__name__}: {e}); move the run directory "
                    f"aside, or use a new --workdir") from None
  if not isinstance(value, dict):
    raise UserError(f"{path} does not hold a JSON object; use a new --workdir")
  return value


def _write_private(path: str, text: str):
  """Writes `text` to `path` atomically, readable by the owner only (0600)."""
  tmp = f"{path}.tmp.{os.getpid()}"
  fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
  with os.fdopen(fd, "w") as f:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


class RunDir:
  """The lock on a workdir and its run files; close it (or use `with`) when the run ends."""

  def __init__(self, path: str, fd: int | None, config_text: str, model_dict: dict | None,
               resumed: bool):
    self.path = path
    self.resumed = resumed  # The workdir already held a config.json.
    self.primary = fd is not None  # Process 0 of a multi-process run (or the only one).
    self._open = True
    self._fd: int | None = fd
    self._config_text = config_text
    self._model_dict = model_dict

  def write_run_files(self):
    """Writes config.json and model.json (0600, atomic): the run has really started.
    A process other than the primary writes nothing."""
    if not self._open:
      raise RuntimeError(f"run directory {self.path} is closed")
    if not self.primary:
      return
    _write_private(os.path.join(self.path, CONFIG_FILE), self._config_text + "\n")
    if self._model_dict is not None:
      _write_private(os.path.join(self.path, MODEL_FILE),
                     json.dumps(self._model_dict, indent=2) + "\n")

  def close(self):
    """Releases the lock (idempotent); the .lock file stays, harmless."""
    self._open = False
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> RunDir:
    return self

  def __exit__(self, *exc):
    self.close()

  def __del__(self):  # A dropped handle must not keep the workdir locked.
    try:
      self.close()
    except Exception:  # noqa: BLE001  At interpreter exit fcntl/os may be gone.
      pass


def lock_run_dir(workdir: str) -> int:
  """An fd holding an exclusive flock on workdir/.lock (creates workdir); UserError if taken."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as e:
    os.close(fd)
    if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
      raise
    try:
      with open(path) as f:
        owner = f.read().strip() or "unknown"
    except OSError:
      owner = "unknown"
    raise UserError(f"{workdir} is in use by another run (pid {owner}); wait for it to finish, "
                    f"stop it, or use another --workdir") from None
  os.ftruncate(fd, 0)
  os.write(fd, f"{os.getpid()}\n".encode())
  return fd


def prepare_run_dir(workdir: str, config: Any, model_config: Any = None, *,
                    allow_method_change: bool = False, write: bool = True) -> RunDir:
  """Locks `workdir`, checks `config` against the run it holds, then writes the run files.

  `config` is the run's ConfigDict (or a plain mapping), `model_config` the
  model's dataclass (None: no model.json, e.g. a trainer that learns it later).
  Raises `UserError` (nothing written, lock released) for a config holding a
  secret, a workdir locked by another process, or an incompatible resume.
  """
  workdir = os.path.abspath(workdir)
  secrets = find_secrets(config)
  if secrets:
    raise UserError(f"config holds a secret ({', '.join(secrets)}); run files keep the config "
                    f"in plain text, so pass the name of an environment variable instead, e.g. "
                    f"--config.judge_kwargs.api_key_env=OPENAI_API_KEY")
  config_text = config_as_json(config)
  model_dict = None
  if model_config is not None:
    model_dict = json.loads(json.dumps(
        dataclasses.asdict(model_config) if dataclasses.is_dataclass(model_config)
        else dict(model_config), default=str))
  fd = lock_run_dir(workdir) if is_primary() else None
  try:
    resumed = os.path.exists(os.path.join(workdir, CONFIG_FILE))
    if resumed:
      _check_resume(workdir, json.loads(config_text), model_dict,
                    allow_method_change=allow_method_change)
    run = RunDir(workdir, fd, config_text, model_dict, resumed)
  except BaseException:
    if fd is not None:
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)
    raise
  if write:
    run.write_run_files()
  return run


def _check_resume(workdir: str, new: dict, model_dict: dict | None, *,
                  allow_method_change: bool):
  """Refuses (UserError) a config that cannot continue the run stored in `workdir`."""
  old = _read_json(os.path.join(workdir, CONFIG_FILE))
  diffs = [d for d in config_differences(old, new) if not _matches(d[0], SAFE_TO_CHANGE)]
  model_path = os.path.join(workdir, MODEL_FILE)
  if model_dict is not None and os.path.exists(model_path):
    diffs += [(f"model.json:{key}", o, n)
              for key, o, n in config_differences(_read_json(model_path), model_dict)]
  model_diffs = [d for d in diffs if d[0].startswith("model.json:") or _matches(d[0], MODEL_KEYS)]
  if model_diffs:
    raise UserError(f"{workdir} holds a run with another model or task ({_describe(model_diffs)}); "
                    f"its checkpoints would not fit: use a new --workdir, or resume with the "
                    f"stored values (see {CONFIG_FILE} there)")
  if diffs and not allow_method_change:
    raise UserError(f"{workdir} holds a run of another method ({_describe(diffs)}); use a new "
                    f"--workdir, or pass --allow_method_change to continue this run's "
                    f"checkpoints with the new settings")
