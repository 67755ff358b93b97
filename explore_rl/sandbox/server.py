"""The fork server of the sandboxed scoring pool (run as `python -m explore_rl.sandbox.server`).

It imports the scorer libraries once, then forks one fresh child per call. The child
drops everything it could use against the host or against other calls before it
touches the untrusted input:

  1. its own session (process group), so a deadline kill reaches all it started;
  2. stdin / stdout / stderr on /dev/null and every other descriptor closed except
     its own result pipe: it cannot read other calls' requests or results, nor
     write replies for them;
  3. an empty scratch directory as working directory, HOME and TMPDIR;
  4. when the server runs as root: supplementary groups dropped, then gid and uid
     set to an unprivileged id (one per concurrency slot by default, so a child
     cannot signal another), and PR_SET_NO_NEW_PRIVS;
  5. resource limits: core files off, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CPU,
     RLIMIT_AS (the address space inherited from the server plus a budget) and,
     last, RLIMIT_NPROC = 0 (set after all imports: OpenBLAS fails to start its
     threads under it).

Then it calls the scorer and writes `{"value": ...}` (or `{"error": ...}`) as JSON on
the result pipe. Nothing is unpickled: the server reads at most `MAX_RESULT_BYTES`
and parses JSON. A child still running at its wall deadline is killed with its
whole process group. When started through `unshare --net --mount --pid` (see
`pool.py`), the server first mounts private tmpfs over the world-writable
directories and a fresh /proc, so children see an empty /tmp, no host processes and
no network but a downed loopback; what Python needs under a hidden directory (the
project, the virtualenv) is bound back read-only (`_mount_private_dirs`).

Protocol (JSON lines): requests on stdin
  {"id": int, "fn": "module:function", "kwargs": {...}, "deadline_s": float,
   "cpu_s": int, "memory_mb": int, "fsize_mb": int}
  {"id": int, "warm": "module:function", "kwargs": {...}}   run in the server itself
                                                            (trusted set-up, e.g. caches)
and replies on stdout
  {"hello": {...}} once, then
  {"id": int, "status": "ok"|"timeout"|"error", "value": ..., "reason": str, "seconds": float,
   "fault": "answer"|"infrastructure" (failed calls only)}
"""
from __future__ import annotations

import ctypes
import errno
import gc
import importlib
import json
import math
import os
import resource
import selectors
import shutil
import signal
import stat
import sys
import tempfile
import time

from explore_rl.sandbox.faults import ANSWER, INFRASTRUCTURE

MAX_RESULT_BYTES = 1 << 16
MAX_REQUEST_BYTES = 1 << 24
# Directories any user may write to; a private tmpfs hides each one in the mount namespace.
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock", "/dev/mqueue")
_PR_SET_NO_NEW_PRIVS = 38
# mount(2) flags (linux/mount.h)
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND, _MS_REC = 32, 1024, 2048, 4096, 16384
_MS_RELATIME = 1 << 21
try:  # loaded once here, not in every child
  _LIBC = ctypes.CDLL(None, use_errno=True)
  _LIBC.prctl  # noqa: B018 - fails where there is no prctl
except (OSError, AttributeError):
  _LIBC = None


def resolve(path: str):
  """The callable `module:attr` names (the module is imported if needed)."""
  module, _, attr = path.partition(":")
  if not module or not attr:
    raise ValueError(f"expected 'module:function', got {path!r}")
  return getattr(importlib.import_module(module), attr)


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
  """mount(2) through libc: no `mount` binary, and no path canonicalisation, which would
  turn a /proc/self/fd source back into the (now hidden) path it names."""
  enc = lambda s: None if s is None else s.encode()
  if _LIBC is None or _LIBC.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                                  enc(data)) != 0:
    err = ctypes.get_errno() if _LIBC is not None else errno.ENOSYS
    raise OSError(err, os.strerror(err), target)


def _needed_paths() -> set[str]:
  """Real paths the children must read: the interpreter (prefixes, executable), every
  `sys.path` entry (the project's source root comes in as PYTHONPATH) and the directory
  of every module imported so far (editable installs outside `sys.path`)."""
  paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable),
           *sys.path}
  paths.update(os.path.dirname(f) for m in list(sys.modules.values())
               if isinstance(f := getattr(m, "__file__", None), str))
  return {os.path.realpath(p) for p in paths if p and os.path.exists(p)}


def _outermost_under(directory: str, paths: set[str]) -> list[str]:
  """The paths strictly inside `directory`, without those inside another of them."""
  inside = sorted(p for p in paths if p.startswith(directory.rstrip("/") + "/"))
  out: list[str] = []
  for p in inside:
    if not out or not p.startswith(out[-1] + "/"):
      out.append(p)
  return out


def _read_only_flags(path: str) -> int:
  """Flags for a read-only remount of the bind at `path`: MS_RDONLY plus the flags the
  mount already has (a user namespace refuses a remount that would clear locked ones)."""
  f_flag = os.statvfs(path).f_flag
  keep = {os.ST_NOSUID: _MS_NOSUID, os.ST_NODEV: _MS_NODEV, os.ST_NOEXEC: _MS_NOEXEC,
          os.ST_NOATIME: _MS_NOATIME, os.ST_NODIRATIME: _MS_NODIRATIME,
          os.ST_RELATIME: _MS_RELATIME}
  flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
  return flags | sum(ms for st, ms in keep.items() if f_flag & st)


def _hide_except(directory: str, keep: list[str], tmpfs_options: str) -> tuple[list, dict]:
  """Mount an empty tmpfs over `directory`, then bind each path of `keep` (inside it)
  back at its own place, read-only.

  Each kept path is opened (O_PATH) before the tmpfs hides it and bound from that
  descriptor afterwards, so no staging directory is needed anywhere. Returns (the
  paths bound back, {path: why it failed}); raises OSError if the tmpfs mount fails.
  """
  fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in keep}
  try:
    _mount("sandbox", directory, "tmpfs", _MS_NOSUID | _MS_NODEV, tmpfs_options)
    bound, failed = [], {}
    for path, fd in fds.items():
      try:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
          os.makedirs(path, mode=0o755, exist_ok=True)
        else:
          os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
          open(path, "a").close()
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        _mount(None, path, None, _read_only_flags(path))
        bound.append(path)
      except OSError as e:
        failed[path] = str(e)
    return bound, failed
  finally:
    for fd in fds.values():
      os.close(fd)


def _mount_private_dirs() -> dict:
  """In a new mount (+pid) namespace: tmpfs over world-writable dirs, a fresh /proc.

  What the children need to run Python (the interpreter, the virtualenv, the project's
  source) stays visible wherever it lives: paths inside a hidden directory (a clone or a
  virtualenv under /tmp) are bound back read-only, and so are paths below a private
  home that other uids cannot enter (a Python under /root/.pyenv), whose rest is hidden.
  """
  needed = _needed_paths()
  done, failed = [], {}

  def hide(directory: str, keep: list[str], options: str, label: str) -> None:
    try:
      bound, not_bound = _hide_except(directory, keep, options)
    except OSError as e:
      failed[directory] = str(e)
      return
    done.append(directory)
    done.extend(f"{p} ({label}, bound back read-only)" for p in bound)
    failed.update(not_bound)

  for path in WORLD_WRITABLE:
    if os.path.isdir(path) and not os.path.islink(path):
      hide(path, _outermost_under(path, needed), "size=256m,mode=1777", "needed by Python")
  blocked: set[str] = set()
  for path in needed:
    hit = _blocked_ancestor(path)
    if hit:
      blocked.add(hit[0])
  for ancestor in sorted(blocked):
    hide(ancestor, _outermost_under(ancestor, needed), "size=1m,mode=0755",
         "python installation")
  try:
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    done.append("/proc")
  except OSError as e:
    failed["/proc"] = str(e)
  return {"mounted": done, "mount_failed": failed}


def _blocked_ancestor(path: str) -> tuple[str, str] | None:
  """(the highest directory above `path` that other users cannot enter, its child on
  the way to `path`), or None when `path` is reachable by any user."""
  parts = [p for p in path.split("/") if p]
  for i in range(len(parts) - 1):
    ancestor = "/" + "/".join(parts[:i + 1])
    if not os.stat(ancestor).st_mode & stat.S_IXOTH:
      return ancestor, parts[i + 1]
  return None


def unreadable(paths: list[str]) -> list[str]:
  """The paths of `paths` this process cannot read (the pool's start-up self-test runs
  it in a child: the project, the virtualenv and the scorer libraries must be visible)."""
  return [p for p in paths if not os.access(p, os.R_OK)]


def can_import(name: str) -> bool:
  """Whether module `name` imports (used to check that children can load lazily)."""
  try:
    importlib.import_module(name)
  except ImportError:
    return False
  return True


def _vm_size_bytes() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmSize:"):
        return int(line.split()[1]) * 1024
  return 0


def _network_interfaces_up() -> list[str]:
  """Interfaces other than loopback that this process sees (empty in a new netns)."""
  try:
    with open("/proc/net/dev") as f:
      names = [line.split(":")[0].strip() for line in f.readlines()[2:]]
  except OSError:
    return ["unknown"]
  return [n for n in names if n != "lo"]


def _write_all(fd: int, data: bytes) -> None:
  while data:
    data = data[os.write(fd, data):]


class _Job:
  __slots__ = ("id", "pid", "rfd", "buf", "eof", "status", "deadline", "start", "scratch",
               "slot", "killed", "too_big")

  def __init__(self, req_id, pid, rfd, deadline, scratch, slot):
    self.id, self.pid, self.rfd, self.deadline = req_id, pid, rfd, deadline
    self.scratch, self.slot, self.start = scratch, slot, time.monotonic()
    self.buf, self.eof, self.status, self.killed, self.too_big = b"", False, None, None, False


class Server:
  """The event loop: requests in, one forked child per call, replies out."""

  def __init__(self, config: dict, reply_fd: int):
    self.max_workers = int(config["max_workers"])
    self.uid = config.get("uid")  # None: one unprivileged uid per slot
    self.uid_base = int(config.get("uid_base", 2_000_000_000))
    self.drop_privileges = bool(config.get("drop_privileges")) and os.geteuid() == 0
    self.out = os.fdopen(reply_fd, "w", buffering=1)
    self.free_slots = list(range(self.max_workers))
    self.pending: list[dict] = []
    self.jobs: dict[int, _Job] = {}  # pid -> job
    self.sel = selectors.DefaultSelector()
    self.scratch_root = tempfile.mkdtemp(prefix="sandbox-", dir=config.get("scratch_dir"))
    os.chmod(self.scratch_root, 0o711)
    self.inbuf = b""
    self.closing = False

  # -- replies -------------------------------------------------------------------------------
  def reply(self, msg: dict) -> None:
    if self.closing:
      return  # nobody reads replies any more
    try:
      self.out.write(json.dumps(msg) + "\n")
    except BrokenPipeError:
      self.closing = True

  # -- children ------------------------------------------------------------------------------
  def _ids(self, slot: int) -> tuple[int, int]:
    uid = self.uid_base + slot if self.uid is None else int(self.uid)
    return uid, uid

  def start(self, req: dict) -> None:
    slot = self.free_slots.pop()
    uid, gid = self._ids(slot)
    scratch = tempfile.mkdtemp(prefix="call-", dir=self.scratch_root)
    if self.drop_privileges:
      os.chown(scratch, uid, gid)
    os.chmod(scratch, 0o700)
    try:
      fn = resolve(req["fn"])  # imports happen here, in the server, before any limit
    except Exception as e:  # noqa: BLE001 - an unknown scorer is the caller's error
      self.free_slots.append(slot)
      shutil.rmtree(scratch, ignore_errors=True)
      self.reply({"id": req["id"], "status": "error", "reason": f"scorer: {e!r}"[:300],
                  "fault": INFRASTRUCTURE, "seconds": 0.0})
      return
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
      code = 1
      try:
        os.close(rfd)
        try:
          self._confine(req, wfd, scratch, uid, gid)
        except BaseException as e:  # noqa: BLE001 - never score unconfined
          _write_all(wfd, json.dumps({"error": f"confinement failed: {e!r}"[:300]}).encode())
          raise
        try:
          value = fn(**req.get("kwargs", {}))
          payload = json.dumps({"value": value}, allow_nan=False)
          code = 0
        except BaseException as e:  # noqa: BLE001 - reported, not raised
          payload = json.dumps({"error": f"{type(e).__name__}: {e}"[:300]})
        _write_all(wfd, payload.encode())
      finally:
        os._exit(code)
    os.close(wfd)
    os.set_blocking(rfd, False)
    job = _Job(req["id"], pid, rfd, time.monotonic() + float(req["deadline_s"]), scratch, slot)
    self.jobs[pid] = job
    self.sel.register(rfd, selectors.EVENT_READ, job)

  def _confine(self, req: dict, wfd: int, scratch: str, uid: int, gid: int) -> None:
    """Runs in the child between fork and the scorer call (see the module docstring)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
      signal.signal(sig, signal.SIG_DFL)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
      os.dup2(null, fd)
    os.closerange(3, wfd)
    os.closerange(wfd + 1, max(os.sysconf("SC_OPEN_MAX"), 1 << 16))
    os.chdir(scratch)
    os.environ.update(HOME=scratch, TMPDIR=scratch)
    address_space = _vm_size_bytes() + (int(req["memory_mb"]) << 20)
    if self.drop_privileges:
      os.setgroups([])
      os.setgid(gid)
      os.setuid(uid)
      if os.getuid() != uid or os.geteuid() != uid:
        raise PermissionError("uid did not change")
    if _LIBC is not None:
      _LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    cpu = max(1, int(math.ceil(float(req["cpu_s"]))))
    fsize = int(req["fsize_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))

  def _read(self, job: _Job) -> None:
    while True:
      try:
        chunk = os.read(job.rfd, 1 << 16)
      except BlockingIOError:
        return
      except OSError:
        chunk = b""
      if not chunk:
        job.eof = True
        self.sel.unregister(job.rfd)
        os.close(job.rfd)
        return
      job.buf += chunk
      if len(job.buf) > MAX_RESULT_BYTES:
        job.too_big = True
        self._kill(job, "result larger than 64 KiB")
        job.buf = b""

  def _kill(self, job: _Job, why: str) -> None:
    if job.killed is None:
      job.killed = why
      for target in (lambda: os.killpg(job.pid, signal.SIGKILL),
                     lambda: os.kill(job.pid, signal.SIGKILL)):
        try:
          target()
        except OSError:
          pass

  def _reap(self) -> None:
    while True:
      try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
      except ChildProcessError:
        return
      if info is None:
        return
      pid = info.si_pid
      job = self.jobs.get(pid)
      if job is not None:  # the leader is still a zombie: its group id cannot be reused yet
        try:
          os.killpg(pid, signal.SIGKILL)
        except OSError:
          pass
      try:
        _, status = os.waitpid(pid, 0)
      except ChildProcessError:
        continue
      if job is not None:
        job.status = status

  def _finish(self, job: _Job) -> None:
    if job.rfd is not None and not job.eof:
      self._read(job)
      if not job.eof:
        self.sel.unregister(job.rfd)
        os.close(job.rfd)
    del self.jobs[job.pid]
    self.free_slots.append(job.slot)
    shutil.rmtree(job.scratch, ignore_errors=True)
    seconds = round(time.monotonic() - job.start, 4)
    msg = {"id": job.id, "seconds": seconds}
    status = job.status
    if job.killed is not None:
      msg.update(status="timeout" if job.killed == "wall deadline" else "error",
                 reason=job.killed, fault=INFRASTRUCTURE if job.killed == "pool closed" else ANSWER)
    elif os.WIFSIGNALED(status):
      sig = os.WTERMSIG(status)
      cpu = sig in (signal.SIGXCPU, signal.SIGKILL)  # SIGKILL: the CPU hard limit
      msg.update(status="timeout" if cpu else "error", fault=ANSWER,
                 reason=("cpu limit" if cpu else f"killed by {signal.Signals(sig).name}"))
    else:
      try:
        result = json.loads(job.buf.decode("utf-8"))
      except (ValueError, RecursionError, UnicodeDecodeError):
        result = None
      if not isinstance(result, dict):
        msg.update(status="error", fault=ANSWER,
                   reason=f"unreadable result (exit code {os.WEXITSTATUS(status)})")
      elif "error" in result:
        # A child's report is a label, not proof (faults.py).
        reason = str(result["error"])[:300]
        msg.update(status="error", reason=reason,
                   fault=INFRASTRUCTURE if reason.startswith("confinement failed") else ANSWER)
      elif "value" in result and os.WEXITSTATUS(status) == 0:
        msg.update(status="ok", value=result["value"])
      else:
        msg.update(status="error", fault=ANSWER, reason=f"exit code {os.WEXITSTATUS(status)}")
    self.reply(msg)

  # -- requests ------------------------------------------------------------------------------
  def _requests(self) -> None:
    try:
      chunk = os.read(0, 1 << 20)
    except BlockingIOError:
      return
    if not chunk:
      self.closing = True
      self.sel.unregister(0)
      return
    self.inbuf += chunk
    if len(self.inbuf) > MAX_REQUEST_BYTES and b"\n" not in self.inbuf:
      raise RuntimeError("request line too long")
    *lines, self.inbuf = self.inbuf.split(b"\n")
    for line in lines:
      if not line.strip():
        continue
      req = json.loads(line)
      if "warm" in req:
        try:
          resolve(req["warm"])(**req.get("kwargs", {}))
          gc.freeze()
          self.reply({"id": req["id"], "status": "ok", "value": None, "seconds": 0.0})
        except Exception as e:  # noqa: BLE001 - reported to the caller
          self.reply({"id": req["id"], "status": "error", "reason": repr(e)[:300],
                      "seconds": 0.0})
      else:
        self.pending.append(req)

  def loop(self) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    self.sel.register(wake_r, selectors.EVENT_READ, "wake")
    os.set_blocking(0, False)
    self.sel.register(0, selectors.EVENT_READ, "stdin")
    while not (self.closing and not self.jobs and not self.pending):
      if self.closing:  # the parent went away: nothing will read the results
        self.pending.clear()
        for job in self.jobs.values():
          self._kill(job, "pool closed")
      while self.pending and self.free_slots and not self.closing:
        self.start(self.pending.pop(0))
      now = time.monotonic()
      timeout = min((j.deadline for j in self.jobs.values()), default=now + 1.0) - now
      for key, _ in self.sel.select(max(0.0, min(timeout, 1.0))):
        if key.data == "stdin":
          self._requests()
        elif key.data == "wake":
          try:
            while os.read(wake_r, 4096):
              pass
          except BlockingIOError:
            pass
        else:
          self._read(key.data)
      self._reap()
      now = time.monotonic()
      for job in list(self.jobs.values()):
        if job.status is None and now >= job.deadline:
          self._kill(job, "wall deadline")
        if job.status is not None:
          self._finish(job)
    shutil.rmtree(self.scratch_root, ignore_errors=True)


def main(argv: list[str]) -> None:
  # Replies go out on a private copy of stdout; fd 1 (and so `print`) goes to stderr, so a
  # library that prints while it is imported or warmed up in the server (reasoning-gym
  # generators do) cannot corrupt the reply stream.
  reply_fd = os.dup(1)
  os.dup2(2, 1)
  config = json.loads(argv[1])
  hello: dict = {"pid_in_namespace": os.getpid(), "root": os.geteuid() == 0}
  if config.get("mount_namespace"):
    hello.update(_mount_private_dirs())
  for module in config.get("preload", ()):
    try:
      importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - reported in the hello; calls then fail clearly
      hello.setdefault("preload_failed", {})[module] = repr(e)[:200]
  hello["interfaces"] = _network_interfaces_up()
  if config.get("drop_privileges"):
    stdlib = os.path.dirname(os.__file__)
    hidden = _blocked_ancestor(os.path.realpath(stdlib))
    if hidden and not any(m.startswith(os.path.join(*hidden)) for m in hello.get("mounted", [])):
      hello["python_unreadable"] = f"{hidden[0]} hides {stdlib} from the children's uid"
  gc.collect()
  gc.freeze()  # fewer copy-on-write page faults in the children
  server = Server(config, reply_fd)
  hello["scratch_root"] = server.scratch_root
  server.reply({"hello": hello})
  try:
    server.loop()
  except OSError as e:
    if e.errno != errno.EPIPE:
      raise


if __name__ == "__main__":
  main(sys.argv)
