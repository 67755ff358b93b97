"""`SandboxPool`: score untrusted (response, problem) pairs with third-party code, contained.

Third-party scorers evaluate parts of model output: reasoning-gym's countdown scorer
hands the answer to sympy's `parse_expr`, which runs `__import__('os').system(...)`
and hangs on `9**9**9`. Such scorers run here, never in the trainer's process. The
pool starts one fork server (`server.py`), which imports the scorer libraries once
and forks a fresh, confined child per call, so a call that patches a library (say
`numpy.isclose = lambda *a: True`) changes only its own, discarded, copy.

Isolation, from outside in (each layer is reported in `isolation` and `metrics()`):
- `unshare --net --mount --pid --fork --kill-child` (util-linux): no network but a
  downed loopback, private tmpfs over every world-writable directory (with what Python
  needs bound back read-only: a project or virtualenv under /tmp still imports), a
  fresh /proc without host processes, and everything killed when the server exits.
  When the platform refuses the namespaces the pool runs without them and logs why.
- a self-test whenever the server starts: the project and the scorer libraries must be
  visible and importable in a child, and known-correct answers must score 1.0; else
  the pool refuses to start (`SandboxUnavailable`, one line).
- per call: an unprivileged uid (root only), an empty scratch directory, limits on
  CPU time, address space, file size, open files and processes, a wall deadline
  after which the child's whole process group is killed.

A call returns a `Result` with status `ok` (the scorer's JSON value), `timeout`
(wall deadline or CPU limit) or `error` (crash, kill, exception, oversized or
unreadable result); callers turn the last two into reward 0. `Result.fault` says whose
fault a failure is, the answer's or the infrastructure's (`faults.py`). Results come back as
JSON: nothing from a child is unpickled. Calls run concurrently (`max_workers`
children at a time), so a batch costs about its slowest call plus the fork
overhead (`benchmarks/sandbox_pool.py`).

What the sandbox cannot do: a call that runs code can forge its *own* result (it
owns the process that reports it). It cannot change any other call's result, the
trainer, or the host. Where a scorer's input grammar is known, callers should still
validate answers before sending them (docs/design.md, "Adding a task": verifiers parse,
they never evaluate model output).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import dataclasses
import functools
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Mapping, Sequence

from explore_rl.errors import UserError
from explore_rl.sandbox import self_test as self_test_module
from explore_rl.sandbox.faults import INFRASTRUCTURE

log = logging.getLogger(__name__)

STATUSES = ("ok", "timeout", "error")
_NAMESPACES = ("--net", "--mount", "--pid")


@dataclasses.dataclass(frozen=True)
class Result:
  """The outcome of one sandboxed call."""
  status: str  # one of STATUSES
  value: Any = None  # the scorer's JSON value when status == "ok"
  reason: str = ""  # why a call failed
  seconds: float = 0.0  # the child's wall time
  fault: str = ""  # a failed call's: "answer" or "infrastructure" (docs/design.md, sandbox)


class SandboxUnavailable(UserError):
  """The pool cannot score: its children cannot see the project or a scorer library, or
  a known-correct answer does not score 1 (one line naming what is hidden or missing)."""


@functools.lru_cache(maxsize=None)
def probe_namespaces() -> tuple[tuple[str, ...], str]:
  """(the `unshare` flags this platform permits, why others were refused)."""
  unshare = shutil.which("unshare")
  if unshare is None:
    return (), "util-linux `unshare` is not installed"
  reasons = []
  user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
  for flags in (_NAMESPACES, ("--net",)):
    cmd = [unshare, *user, *flags, "--fork", "--kill-child", "--", "true"]
    try:
      r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
      reasons.append(f"{' '.join(flags)}: {e}")
      continue
    if r.returncode == 0:
      return (*user, *flags), "; ".join(reasons)
    reasons.append(f"{' '.join(user + flags)}: {r.stderr.strip() or f'exit {r.returncode}'}")
  return (), "; ".join(reasons)


def isolation_report(hello: Mapping, flags: Sequence[str], refused: str, root: bool) -> dict:
  """`SandboxPool.isolation` from the server's hello line and the namespaces it runs in;
  logs a warning for each isolation that is missing."""
  isolation = {
      "network": "--net" in flags and not hello.get("interfaces"),
      "mount": bool(hello.get("mounted")), "pid": "--pid" in flags,
      "unprivileged": root, "namespaces": list(flags),
      "refused": refused, "mounted": hello.get("mounted", []),
      "mount_failed": hello.get("mount_failed", {}),
      "preload_failed": hello.get("preload_failed", {}),
      "python_unreadable": hello.get("python_unreadable", "")}
  missing = [k for k in ("network", "mount", "unprivileged") if not isolation[k]]
  if missing:
    why = [refused] if refused else []
    if not root:
      why.append("not root: children keep the caller's uid and can write the caller's files")
    log.warning("sandbox pool runs without %s isolation (%s)", ", ".join(missing),
                "; ".join(why) or "see SandboxPool.isolation")
  if hello.get("python_unreadable"):
    log.warning("sandbox pool: %s; a scorer that imports a module the server did not "
                "preload fails in the child", hello["python_unreadable"])
  if hello.get("preload_failed"):
    log.warning("sandbox pool could not preload %s", hello["preload_failed"])
  return isolation


class CallStats:
  """A pool's counts of calls by status and of server starts, and its call seconds
  (the caller holds the pool's lock)."""

  def __init__(self):
    self.counts = dict.fromkeys(("calls", "ok", "timeout", "error", "server_starts"), 0)
    self.total_s = self.max_s = 0.0

  def record(self, results: Sequence[Result]) -> None:
    for r in results:
      self.counts["calls"] += 1
      self.counts[r.status if r.status in STATUSES else "error"] += 1
      self.total_s += r.seconds
      self.max_s = max(self.max_s, r.seconds)

  def metrics(self) -> dict:
    out = {f"sandbox_{k}": v for k, v in self.counts.items()}
    out["sandbox_seconds_mean"] = self.total_s / max(self.counts["calls"], 1)
    out["sandbox_seconds_max"] = self.max_s
    return out


class SandboxPool:
  """A fork server of confined scorer children; thread-safe.

  preload: modules the server imports once (the scorer libraries).
  max_workers: children alive at once (default: 2 x CPU count, at least 4).
  deadline_s / cpu_s / memory_mb / fsize_mb: per-call defaults: the wall deadline,
    the CPU-time limit, the address space a call may add to the server's, and the
    largest file it may write in its scratch directory.
  uid: run every child as this uid (e.g. 65534, nobody); None gives each concurrency
    slot its own unprivileged uid (`uid_base + slot`, owned by no account) so a child
    cannot signal or trace another. Only applies when the pool runs as root.
  namespaces: False runs without `unshare` (for platforms where it misbehaves).
  checks: trusted "module:function" scorers without arguments that return 1.0 (a
    known-correct answer's score); with the visibility of the project and of every
    preloaded library the host can import, they make the self-test that runs whenever
    the server starts. A failing self-test refuses to start (`SandboxUnavailable`).
  """

  def __init__(self, *, preload: Sequence[str] = (), max_workers: int | None = None,
               deadline_s: float = 5.0, cpu_s: float = 3.0, memory_mb: int = 1024,
               fsize_mb: int = 8, uid: int | None = None, uid_base: int = 2_000_000_000,
               namespaces: bool = True, python: str = sys.executable,
               checks: Sequence[str] = ()):
    self.preload, self.checks = tuple(preload), tuple(checks)
    self.max_workers = int(max_workers or max(4, 2 * (os.cpu_count() or 1)))
    self.defaults = {"deadline_s": float(deadline_s), "cpu_s": float(cpu_s),
                     "memory_mb": int(memory_mb), "fsize_mb": int(fsize_mb)}
    self.uid, self.uid_base, self.python = uid, int(uid_base), python
    self.use_namespaces = namespaces
    self._lock = threading.Lock()  # futures, counters, the server handle
    self._write_lock = threading.Lock()  # (re)starting the server and writing requests
    self._ids = itertools.count()
    self._futures: dict[int, concurrent.futures.Future] = {}
    self._proc: subprocess.Popen | None = None
    self._pid = None  # the process that owns the server (a fork must start its own)
    self.isolation: dict = {}
    self._stats = CallStats()
    self._warm: list[tuple[str, str]] = []  # (fn, kwargs json) replayed after a restart

  # -- the server ----------------------------------------------------------------------------
  def _start(self) -> None:
    flags, refused = probe_namespaces() if self.use_namespaces else ((), "disabled by caller")
    root = os.geteuid() == 0 and "--user" not in flags
    config = {"max_workers": self.max_workers, "preload": list(self.preload),
              "uid": self.uid, "uid_base": self.uid_base, "drop_privileges": root,
              "mount_namespace": "--mount" in flags}
    cmd = [self.python, "-m", "explore_rl.sandbox.server", json.dumps(config)]
    if flags:
      cmd = [shutil.which("unshare"), *flags, "--fork", "--kill-child", "--", *cmd]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": self_test_module.package_root(),
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "LANG": "C.UTF-8",
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMEXPR_NUM_THREADS": "1", "HOME": "/nonexistent"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            cwd="/", text=True, bufsize=1)
    hello_line = proc.stdout.readline()
    try:
      hello = json.loads(hello_line)["hello"]
    except (ValueError, KeyError, TypeError):
      proc.kill()
      proc.wait()
      raise RuntimeError(f"sandbox server failed to start: {hello_line!r}") from None
    self.isolation = isolation_report(hello, flags, refused, root)
    self._proc, self._pid = proc, os.getpid()
    self._stats.counts["server_starts"] += 1
    threading.Thread(target=self._reader, args=(proc,), daemon=True,
                     name="sandbox-pool-reader").start()
    problem = self._self_test(proc)
    if problem:
      self._proc = None
      proc.kill()
      proc.wait()
      raise SandboxUnavailable(f"sandbox scoring pool refused to start: {problem}")
    for fn, kwargs in self._warm:  # replies to these ids find no future and are dropped
      self._write(proc, {"warm": fn, "kwargs": json.loads(kwargs)})

  def _write(self, proc: subprocess.Popen, msg: dict) -> concurrent.futures.Future:
    """Send one request to `proc` (caller holds the write lock); its reply's future."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    with self._lock:
      msg = {**msg, "id": next(self._ids)}
      self._futures[msg["id"]] = future
    try:
      proc.stdin.write(json.dumps(msg) + "\n")
      proc.stdin.flush()
    except (BrokenPipeError, OSError, ValueError):
      with self._lock:
        self._futures.pop(msg["id"], None)
      future.set_result(Result("error", reason="sandbox server is gone", fault=INFRASTRUCTURE))
    return future

  def _self_test(self, proc: subprocess.Popen, extra: Sequence[tuple[str, Mapping]] = ()) -> str:
    """`self_test.run` on this server's children ("" when they can score)."""
    def request(fn, kwargs):
      return self._write(proc, {"fn": fn, "kwargs": dict(kwargs), **self.defaults})

    return self_test_module.run(request, preload=self.preload, isolation=self.isolation,
                                checks=[(c, {}) for c in self.checks] + list(extra),
                                timeout=self.defaults["deadline_s"] + 30.0)

  def _ensure(self) -> None:
    """Start the server if it is not running (caller holds the write lock)."""
    if self._proc is None or self._pid != os.getpid() or self._proc.poll() is not None:
      self._proc = None
      self._start()

  def _reader(self, proc: subprocess.Popen) -> None:
    for line in proc.stdout:
      try:
        msg = json.loads(line)
        result = Result(msg["status"], msg.get("value"), msg.get("reason", ""),
                        float(msg.get("seconds", 0.0)), msg.get("fault", ""))
        req_id = int(msg["id"])
      except (ValueError, KeyError, TypeError):
        log.warning("sandbox pool: unreadable server line %r", line[:200])
        continue
      with self._lock:
        future = self._futures.pop(req_id, None)
      if future is not None:
        future.set_result(result)
    proc.wait()
    self._fail_all(proc, f"sandbox server exited with code {proc.returncode}")

  def _fail_all(self, proc: subprocess.Popen, reason: str) -> None:
    with self._lock:
      if self._proc is not proc:
        return
      futures, self._futures = self._futures, {}
      self._proc = None
    for future in futures.values():
      if not future.done():
        future.set_result(Result("error", reason=reason, fault=INFRASTRUCTURE))

  def _send(self, fn: str, kwargs: Mapping, *, warm: bool = False,
            **limits) -> concurrent.futures.Future:
    # Writes hold only the write lock: the reader thread must always be able to drain
    # replies, or a server blocked on a full stdout pipe would stop reading requests.
    with self._write_lock:
      self._ensure()
      msg = {"kwargs": dict(kwargs)}
      msg.update({"warm": fn} if warm else {"fn": fn, **self.defaults, **limits})
      return self._write(self._proc, msg)

  # -- public API ----------------------------------------------------------------------------
  def warm(self, fn: str, **kwargs) -> Result:
    """Run the *trusted* `fn(**kwargs)` inside the server itself (e.g. fill a cache the
    children inherit); once per pool (a repeat returns at once), replayed whenever the
    server restarts. Never pass model output."""
    entry = (fn, json.dumps(kwargs, sort_keys=True))
    with self._lock:
      if entry in self._warm:
        return Result("ok")
    result = self._send(fn, kwargs, warm=True).result(timeout=120)
    if result.status == "ok" and entry not in self._warm:
      self._warm.append(entry)
    return result

  def map(self, fn: str, kwargs_list: Sequence[Mapping], **limits) -> list[Result]:
    """`fn(**kwargs)` for each kwargs, each in its own confined child, concurrently.

    fn: "module:function", a trusted scorer that returns a JSON value.
    limits: per-call overrides of deadline_s, cpu_s, memory_mb, fsize_mb.
    """
    futures = [self._send(fn, kwargs, **limits) for kwargs in kwargs_list]
    deadline = {**self.defaults, **limits}["deadline_s"]
    # Calls wait for a free slot: bound the whole batch, then give up on the server.
    budget = (len(futures) / self.max_workers + 2) * (deadline + 1.0) + 30.0
    end = time.monotonic() + budget
    results = []
    for future in futures:
      try:
        results.append(future.result(timeout=max(0.0, end - time.monotonic())))
      except concurrent.futures.TimeoutError:
        log.warning("sandbox pool: no reply within %.0f s; restarting the server", budget)
        self._restart()
        results.append(future.result(timeout=5.0) if future.done()
                       else Result("error", reason="no reply from the sandbox server",
                                   fault=INFRASTRUCTURE))
    with self._lock:
      self._stats.record(results)
    return results

  def self_test(self, extra: Sequence[tuple[str, Mapping]] = ()) -> str:
    """The start-up self-test run again on the running server, with `extra` known-correct
    calls ("module:function", kwargs) that must return a number >= 1: "" when the
    children can still score, else one line naming what is hidden or missing. Callers
    run it when many calls fail, to tell a broken scorer from answers that crash it."""
    with self._write_lock:
      self._ensure()  # a (re)start runs the self-test itself and raises if it fails
      return self._self_test(self._proc, extra)

  def call(self, fn: str, **kwargs) -> Result:
    """One call of `fn(**kwargs)` (see `map`)."""
    return self.map(fn, [kwargs])[0]

  def metrics(self) -> dict:
    """Counts of calls by status, server (re)starts, mean / max call seconds, isolation."""
    with self._lock:
      out = self._stats.metrics()
      for key in ("network", "mount", "pid", "unprivileged"):
        out[f"sandbox_isolated_{key}"] = bool(self.isolation.get(key, False))
    return out

  def _restart(self) -> None:
    with self._lock:
      proc = self._proc
    if proc is not None:
      proc.kill()
      proc.wait()
      self._fail_all(proc, "sandbox server restarted")

  def close(self) -> None:
    """Stop the server: closing its stdin makes it kill its children and exit."""
    with self._lock:
      proc, self._proc = self._proc, None
    if proc is None or self._pid != os.getpid():
      return
    try:
      proc.stdin.close()
      proc.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):
      proc.kill()
      proc.wait()

  def __enter__(self) -> "SandboxPool":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


_SHARED: dict[tuple, SandboxPool] = {}
_SHARED_LOCK = threading.Lock()


def shared_pool(preload: Sequence[str] = (), **kwargs) -> SandboxPool:
  """The process-wide pool for these settings (started on first use, closed at exit)."""
  key = (tuple(sorted(preload)), tuple(sorted(kwargs.items())))
  with _SHARED_LOCK:
    pool = _SHARED.get(key)
    if pool is None:
      pool = _SHARED[key] = SandboxPool(preload=preload, **kwargs)
    return pool


@atexit.register
def _close_shared() -> None:
  for pool in list(_SHARED.values()):
    pool.close()
