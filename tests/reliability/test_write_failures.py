"""Writes that run out of room: a full filesystem (ENOSPC) or the file-size limit (EFBIG).

Each stops with one line naming the path and the shortfall (`disk.WriteFailed`), and
what was written before stays loadable: the previous checkpoint, the metrics rows
before, the previous eval.json.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.disk import WriteFailed, atomic_write_text
from explore_rl.metrics_log import MetricsWriter, read_metrics
from explore_rl.training.checkpoint import Checkpointer

LIMIT = 64 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def file_size_limit(nbytes: int):
  """RLIMIT_FSIZE (soft) for this process: a write past it fails with EFBIG (Python
  ignores SIGXFSZ). Restored after."""
  soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
  resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
  try:
    yield
  finally:
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _state(seed: int):
  # Random values: Orbax compresses, and a constant array would fit under any limit.
  return {"w": jnp.asarray(np.random.default_rng(seed).normal(size=(128, 256)), jnp.float32)}


def test_a_checkpoint_past_the_file_size_limit_stops_with_one_line(tmp_path):
  ckpt = Checkpointer(str(tmp_path / "ckpt"))
  ckpt.save(1, _state(1), {"step": 1})
  big = _state(2)
  with file_size_limit(LIMIT), pytest.raises(WriteFailed) as e:
    ckpt.save(2, big, {"step": 2})
  message = str(e.value)
  assert "\n" not in message
  assert message == (f"checkpoint step 2: could not write {tmp_path / 'ckpt'}: a file would "
                     "exceed the file-size limit (the file-size limit is 64 KiB; the write "
                     "holds 128 KiB); the last checkpoint, step 1, is intact: make room and run "
                     "the same command to resume")
  assert sorted(os.listdir(tmp_path / "ckpt")) == ["1"]  # the partial step is gone
  state, meta = Checkpointer(str(tmp_path / "ckpt")).restore(_state(0))
  assert meta == {"step": 1}
  np.testing.assert_array_equal(state["w"], _state(1)["w"])


def test_asyncio_reports_of_orbax_writes_out_of_room_are_dropped_and_others_kept(tmp_path, caplog):
  # When more than one of Orbax's gathered writes fails, asyncio logs the others as
  # "exception was never retrieved" through its own logger, at a moment set by the event loop:
  # the same report, built here through asyncio's own handler.
  Checkpointer(str(tmp_path / "ckpt"))  # installs the filters
  out_of_room = ValueError('OUT_OF_RANGE: Error writing "params.w/0.0" in OCDBT database: Failed '
                           "to write 76367 bytes to file 15: File too large [os_error_code='27']")
  loop = asyncio.new_event_loop()
  try:
    for error in (out_of_room, ValueError("a bug, not a full disk")):
      loop.call_exception_handler({"message": "_GatheringFuture exception was never retrieved",
                                   "exception": error})
  finally:
    loop.close()
  reported = [str(r.exc_info[1]) for r in caplog.records if r.name == "asyncio"]
  assert reported == ["a bug, not a full disk"]


_FULL_DISK = textwrap.dedent("""
    import json, sys
    import jax.numpy as jnp, numpy as np
    from explore_rl.disk import WriteFailed
    from explore_rl.training.checkpoint import Checkpointer
    state = lambda seed: {"w": jnp.asarray(np.random.default_rng(seed).normal(size=(256, 256)),
                                           jnp.float32)}
    ckpt = Checkpointer(sys.argv[1])
    ckpt.save(1, state(1), {"step": 1})
    try:
      ckpt.save(2, state(2), {"step": 2})
      out = {"raised": None}
    except WriteFailed as e:
      out = {"raised": str(e)}
    out["steps"] = sorted(__import__("os").listdir(sys.argv[1]))
    out["restored"] = Checkpointer(sys.argv[1]).restore(state(0))[1]
    print(json.dumps(out))
""")


def test_a_checkpoint_on_a_full_filesystem_stops_with_one_line(tmp_path):
  unshare = shutil.which("unshare")
  probe = subprocess.run([unshare or "false", "--mount", "true"], capture_output=True)
  if probe.returncode:
    pytest.skip("no mount namespace here to mount a small filesystem in")
  script = tmp_path / "full_disk.py"
  script.write_text(_FULL_DISK)
  # A 400 KiB tmpfs: room for one 256 KiB step, not for two.
  disk = tmp_path / "disk"
  disk.mkdir()
  shell = (f"mount -t tmpfs -o size=400k none {disk} && "
           f"{sys.executable} {script} {disk}/ckpt")
  r = subprocess.run([unshare, "--mount", "sh", "-c", shell], capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out["raised"].startswith(f"checkpoint step 2: could not write {disk}/ckpt: no space "
                                  "left on the device (")
  assert re.search(r" \d+(\.\d)? [KM]iB short\); the last checkpoint, step 1, is intact",
                   out["raised"])
  assert out["steps"] == ["1"] and out["restored"] == {"step": 1}
  assert "Traceback" not in r.stderr  # Orbax's own report of the failure is filtered


def test_a_metrics_row_past_the_file_size_limit_stops_with_one_line(tmp_path):
  writer = MetricsWriter(str(tmp_path), tensorboard=False, progress=False)
  writer.write(1, {"reward_mean": 0.5})
  size = os.path.getsize(tmp_path / "metrics.jsonl")
  with file_size_limit(size + 10), pytest.raises(WriteFailed) as e:
    writer.write(2, {"reward_mean": 0.25, "padding": "x" * 100})
  writer.close()  # the failed row is not written again, nor raised again
  assert str(e.value).startswith(f"metrics row of step 2: could not write "
                                 f"{tmp_path / 'metrics.jsonl'}: a file would exceed the "
                                 "file-size limit")
  # The torn row (the bytes that fit) is cut when the run resumes; row 1 is intact.
  MetricsWriter(str(tmp_path), tensorboard=False, progress=False, initial_step=1).close()
  assert [r["step"] for r in read_metrics(str(tmp_path))] == [1]


def test_eval_results_are_written_whole_or_not_at_all(tmp_path):
  path = str(tmp_path / "eval.json")
  atomic_write_text(path, json.dumps({"pass@1": 0.5}), what="explore-rl eval")
  with file_size_limit(64), pytest.raises(WriteFailed, match=r"^explore-rl eval: could not "
                                           rf"write {path}: a file would exceed"):
    atomic_write_text(path, json.dumps({"pass@1": 0.75, "padding": "x" * 200}),
                      what="explore-rl eval")
  assert json.load(open(path)) == {"pass@1": 0.5}
  assert os.listdir(tmp_path) == ["eval.json"]  # no temporary file left


def _train(workdir, env, total_steps, **kwargs):
  return subprocess.run(
      [sys.executable, "-m", "explore_rl.cli", "train", "--config", "configs/grpo.py:tiny",
       "--workdir", str(workdir), f"--config.total_steps={total_steps}",
       "--config.checkpoint_every=1", "--config.eval_every=2"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, **kwargs)


@pytest.mark.slow
def test_a_run_whose_checkpoint_exceeds_the_limit_stops_then_resumes(tmp_path):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "",
         "EXPLORE_RL_JAX_CACHE": str(tmp_path / "jax_cache")}
  workdir = tmp_path / "run"
  assert _train(workdir, env, 2).returncode == 0
  # Every checkpoint of the tiny model holds files over 16 KB whatever way TensorStore splits
  # its data (Orbax's `_METADATA` and `_sharding` alone are 22-29 KB); the run's other
  # files (metrics rows, TensorBoard events, eval results) stay below it for 4 steps.
  limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE,  # noqa: E731
                                     (16_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
  stopped = _train(workdir, env, 4, preexec_fn=limit)
  assert stopped.returncode == 2
  assert "Traceback" not in stopped.stderr
  last = stopped.stderr.strip().splitlines()[-1]
  assert f"checkpoint step 3: could not write {workdir / 'checkpoints'}: a file would exceed " \
         "the file-size limit (the file-size limit is 16 KiB; the write holds " in last
  assert last.endswith("); the last checkpoint, step 2, is intact: make room and run the same "
                       "command to resume")
  # Room again: the same command resumes from step 2 and writes steps 3 and 4 once each.
  resumed = _train(workdir, env, 4)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert [r["step"] for r in map(json.loads, open(workdir / "metrics.jsonl"))] == [1, 2, 3, 4]
