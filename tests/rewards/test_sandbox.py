"""The sandboxed scoring pool against hostile answers, through the real pool.

Hostile answers go to reasoning-gym's countdown scorer, which hands them to sympy's
`parse_expr` (it executes them). Where it is safe, a positive control runs the same
payload in this process first, to show the hazard is real and the payload works.
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import pathlib
import signal
import socket
import time
import uuid

import pytest

pytest.importorskip("reasoning_gym")

from explore_rl.sandbox import SandboxPool, SandboxUnavailable, codec  # noqa: E402
from explore_rl.tasks import get_task, sample_problems, scoring_pool  # noqa: E402
from explore_rl.tasks.registry import sandbox_scores  # noqa: E402

DEADLINE = 2.0
SLACK = 2.0  # fork, reap and reply on a busy 2-core machine


@pytest.fixture(scope="module")
def task():
  return get_task("reasoning_gym:countdown", deadline_s=DEADLINE, cpu_s=1.0)


@pytest.fixture(scope="module")
def problem(task):
  p = sample_problems(task, seed=11, num=1, difficulty=0.0)[0]
  assert task.score(p, p.solution).reward == 1.0  # starts the shared pool, untimed
  return p


def _answer(text: str) -> str:
  return f"<answer>{text}</answer>"


def _timed_score(task, problem, text):
  start = time.monotonic()
  score = task.score(problem, _answer(text))
  return score, time.monotonic() - start


def _sandbox_uid_processes() -> list[int]:
  """Host pids of this pool's processes that run as one of its unprivileged uids.

  Under xdist other workers score with pools of their own (same uid range), so when
  the pool has a pid namespace only processes inside it count.
  """
  pool = scoring_pool()
  namespace = None
  if pool.isolation.get("pid"):  # the server's parent is `unshare`, which made the namespace
    namespace = os.readlink(f"/proc/{pool._proc.pid}/ns/pid_for_children")
  pids = []
  for entry in pathlib.Path("/proc").iterdir():
    try:
      status = (entry / "status").read_text()
      inside = namespace is None or os.readlink(entry / "ns" / "pid") == namespace
    except OSError:
      continue
    for line in status.splitlines():
      if line.startswith("Uid:") and int(line.split()[1]) >= pool.uid_base and inside:
        pids.append(int(entry.name))
  return pids


# -- hostile answers through the task's real pool ----------------------------------------------

def test_shell_via_os_system_creates_no_file(task, problem, tmp_path):
  control, target = tmp_path / "control", tmp_path / "pwned"
  task.score_in_process_unsafe(problem, f"__import__('os').system('touch {control}')")
  assert control.exists()  # the hazard: in-process, the answer runs a shell
  score, seconds = _timed_score(task, problem, f"__import__('os').system('touch {target}')")
  assert score.reward == 0.0 and seconds < DEADLINE + SLACK
  assert not target.exists()


def test_writes_create_no_file_outside_the_scratch_dir(task, problem, tmp_path):
  isolation = scoring_pool().isolation
  if not (isolation["unprivileged"] and isolation["mount"]):
    pytest.skip(f"children keep the caller's uid or see the host's /tmp here: {isolation}")
  control = tmp_path / "control"
  task.score_in_process_unsafe(problem, f"open('{control}','w').write('x')")
  assert control.read_text() == "x"
  tag = uuid.uuid4().hex
  repo = pathlib.Path(__file__).resolve().parents[2]
  targets = [tmp_path / "pwned", pathlib.Path(f"/tmp/sandbox-test-{tag}"),
             pathlib.Path(f"/dev/shm/sandbox-test-{tag}"),
             pathlib.Path(f"/var/tmp/sandbox-test-{tag}"), repo / f"sandbox-test-{tag}"]
  for target in targets:
    score, _ = _timed_score(task, problem, f"open('{target}','w').write('x')")
    assert score.reward == 0.0
  assert [t for t in targets if t.exists()] == []


def test_power_tower_times_out_within_the_deadline(task, problem):
  before = scoring_pool().metrics()["sandbox_timeout"]
  score, seconds = _timed_score(task, problem, "9**9**9")
  assert (score.reward, score.status) == (0.0, "timeout")
  assert seconds < DEADLINE + SLACK
  assert scoring_pool().metrics()["sandbox_timeout"] == before + 1


def test_ten_gigabyte_allocation_is_contained(task, problem):
  score, seconds = _timed_score(task, problem, "bytearray(10**10)")
  assert score.reward == 0.0 and score.status in ("wrong", "error")
  assert seconds < DEADLINE + SLACK


def test_socket_connection_to_a_local_port_fails(task, problem):
  pool = scoring_pool()
  if not pool.isolation.get("network"):
    pytest.skip(f"no network namespace on this platform: {pool.isolation.get('refused')}")
  with socket.create_server(("127.0.0.1", 0)) as server:
    server.settimeout(1.0)
    payload = f"__import__('socket').create_connection(('127.0.0.1', '{server.getsockname()[1]}'))"
    task.score_in_process_unsafe(problem, payload)
    server.accept()[0].close()  # the control connected: the payload and listener work
    score, _ = _timed_score(task, problem, payload)
    assert score.reward == 0.0
    with pytest.raises(socket.timeout):
      server.accept()


def test_fork_bomb_is_contained(task, problem):
  score, seconds = _timed_score(task, problem, "__import__('os').system(':(){ :|:& };:')")
  assert score.reward == 0.0 and seconds < DEADLINE + SLACK
  score, _ = _timed_score(task, problem, "__import__('os').fork()")
  assert score.reward == 0.0
  assert _sandbox_uid_processes() == []
  if scoring_pool().isolation["unprivileged"]:  # control: a running child is seen
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
      busy = ex.submit(_timed_score, task, problem, "9**9**9")
      seen = []
      while not seen and not busy.done():
        seen = _sandbox_uid_processes()
      assert len(seen) == 1 and busy.result()[0].status == "timeout"


def test_a_patched_library_does_not_leak_into_later_calls(task, problem):
  numbers = task.record(problem)["metadata"]["numbers"]
  wrong = "+".join(map(str, numbers))  # uses every number, misses the target
  assert task.score(problem, _answer(wrong)).reward == 0.0
  patch = ("setattr(__import__('numpy'),'isclose',"
           f"__import__('unittest.mock').mock.Mock(return_value=True)) or ({wrong})")
  # The patch runs and forges its own call's result (the documented limit) ...
  assert task.score(problem, _answer(patch)).reward == 1.0
  # ... but it patched a discarded child: later calls see the real numpy.isclose.
  scores = task.score_many([problem] * 4, [_answer(wrong)] * 4)
  assert [(s.reward, s.status) for s in scores] == [(0.0, "wrong")] * 4


def test_answers_that_crash_the_scorer_score_zero_and_scoring_goes_on(task, problem, caplog):
  # Every call errors (the answer ends its own child), more than the task's
  # max_scorer_errors: the pool re-checks with the problem's own solution, which scores,
  # so the failures are the answers' and the batch scores 0 instead of stopping the run.
  crash = _answer("__import__('os')._exit(3)")
  with caplog.at_level(logging.WARNING):
    scores = task.score_many([problem] * 4, [crash] * 4)
  assert [(s.reward, s.status) for s in scores] == [(0.0, "error")] * 4
  assert "the self-test passes, so the answers made them fail" in caplog.text


def test_a_scorer_that_cannot_run_stops_scoring_with_one_line(problem):
  calls = [{"answer": "1"}] * 4
  with pytest.raises(SandboxUnavailable) as e:
    sandbox_scores("explore_rl.tasks.no_such_scorer:score", calls, reference={"answer": "1"})
  message = str(e.value)
  assert "\n" not in message
  assert message.startswith("4 of 4 calls of explore_rl.tasks.no_such_scorer:score failed "
                            "(first: scorer: ModuleNotFoundError")
  assert "a known-correct answer of explore_rl.tasks.no_such_scorer:score does not score 1.0" \
      in message


# The payloads of the tests above (harmless here: each runs in a discarded child).
HOSTILE = ("__import__('os').system('true')", "9**9**9", "bytearray(10**10)",
           "__import__('os').system(':(){ :|:& };:')", "__import__('os').fork()",
           "setattr(__import__('numpy'),'isclose',"
           "__import__('unittest.mock').mock.Mock(return_value=True))")


def test_after_all_of_them_right_and_wrong_still_score(task, problem):
  # Self-contained: pytest-xdist may run the tests above on another worker (another pool).
  before = scoring_pool().metrics()
  for payload in HOSTILE:
    assert task.score(problem, _answer(payload)).reward == 0.0
  assert task.score(problem, problem.solution).reward == 1.0
  assert task.score(problem, _answer("1+1")).reward == 0.0
  after = scoring_pool().metrics()
  # the pool went on, never restarted
  assert after["sandbox_server_starts"] == before["sandbox_server_starts"] == 1
  assert after["sandbox_timeout"] >= before["sandbox_timeout"] + 1       # 9**9**9
  assert after["sandbox_ok"] >= before["sandbox_ok"] + 2


# -- the pool's mechanics ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool():
  with SandboxPool(max_workers=16, deadline_s=1.0, cpu_s=1.0) as p:
    yield p


def test_children_run_unprivileged_in_an_empty_scratch_dir(pool):
  assert pool.call("os:listdir", path=".").value == []
  if os.geteuid() == 0:
    uid = pool.call("os:getuid").value
    assert uid >= pool.uid_base and pool.isolation["unprivileged"]
  # Lazily imported modules still load (the interpreter's files are readable).
  assert pool.call("explore_rl.sandbox.server:can_import", name="cProfile").value is True


def test_wall_deadline_kills_a_blocked_child_and_batches_run_concurrently(pool):
  start = time.monotonic()
  results = pool.map("signal:pause", [{}] * 16, deadline_s=1.0)
  elapsed = time.monotonic() - start
  assert {(r.status, r.reason) for r in results} == {("timeout", "wall deadline")}
  assert elapsed < 1.0 + SLACK  # 16 calls side by side, not 16 seconds


def test_failures_are_reported_not_raised(pool):
  missing = pool.call("os:listdir", path="/no/such/dir")
  assert missing.status == "error" and "FileNotFoundError" in missing.reason
  big = pool.call("string:capwords", s="a " * 50_000)  # a 100 KB result
  assert big.status == "error" and "64 KiB" in big.reason
  unknown = pool.call("no_such_module:fn")
  assert unknown.status == "error"
  counts = pool.metrics()
  assert counts["sandbox_error"] >= 3 and counts["sandbox_calls"] >= 3


def test_a_library_that_prints_in_the_server_does_not_corrupt_the_replies(pool, caplog):
  # reasoning-gym generators print while they are built in the server (a warm-up): a half
  # line on the reply stream used to prefix the next reply, which was then lost.
  with caplog.at_level(logging.WARNING, logger="explore_rl.sandbox.pool"):
    assert pool.warm("builtins:print", end="half a line ", flush=True).status == "ok"
    assert pool.call("os:getpid").status == "ok"
  assert "unreadable" not in caplog.text


def test_a_killed_server_is_replaced(pool):
  assert pool.call("os:getpid").status == "ok"
  starts = pool.metrics()["sandbox_server_starts"]
  os.kill(pool._proc.pid, signal.SIGKILL)
  pool._proc.wait()
  assert pool.call("os:getpid").status == "ok"
  assert pool.metrics()["sandbox_server_starts"] == starts + 1


@pytest.mark.parametrize("value", [
    None, 1, 2.5, float("inf"), "s", [1, (2, 3)], (1, [2]), {1, 2}, frozenset({"a"}),
    {"a": {(1, 2): {3}}}, {"__sandbox_codec__": 1},
])
def test_codec_round_trips_plain_data(value):
  assert codec.decode(codec.encode(value)) == value
  assert type(codec.decode(codec.encode(value))) is type(value)
