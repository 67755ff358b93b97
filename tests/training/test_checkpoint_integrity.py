"""Checkpoint checksums and fallback: each kind of damage to the newest step falls back to
the previous one with identical arrays; all steps damaged is one clear UserError."""
from __future__ import annotations

import glob
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.errors import UserError
from explore_rl.training.checkpoint import CHECKSUM_FILE, Checkpointer


def make_state(step: int):
  return {"w": jnp.arange(4096, dtype=jnp.float32).reshape(64, 64) * step,
          "b": jnp.full((7,), step, jnp.float32), "count": jnp.int32(step)}


def save_steps(directory, steps=(1, 2, 3)):
  ckpt = Checkpointer(str(directory), keep=5)
  for step in steps:
    ckpt.save(step, make_state(step), {"step": step, "note": f"saved at {step}"})
  ckpt.close()


def largest_data_file(step_dir):
  files = [f for f in glob.glob(os.path.join(step_dir, "state", "**", "*"), recursive=True)
           if os.path.isfile(f) and "/d/" in f]
  return max(files, key=os.path.getsize)


def flip_bytes(step_dir):
  path = largest_data_file(step_dir)
  data = bytearray(open(path, "rb").read())
  middle = len(data) // 2
  data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
  open(path, "wb").write(bytes(data))


def truncate(step_dir):
  path = largest_data_file(step_dir)
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def delete_data_file(step_dir):
  os.remove(largest_data_file(step_dir))


def delete_metadata(step_dir):
  os.remove(os.path.join(step_dir, "state", "_METADATA"))


def garble_meta(step_dir):
  (path,) = [p for p in glob.glob(os.path.join(step_dir, "meta", "*"))
             if "commit_success" not in p]
  open(path, "w").write('{"step": 3, "no')


def garble_checksums(step_dir):
  open(os.path.join(step_dir, CHECKSUM_FILE), "w").write("not json")


def delete_checksums(step_dir):
  os.remove(os.path.join(step_dir, CHECKSUM_FILE))


CORRUPTIONS = {"flipped_bytes": (flip_bytes, "checksum mismatch in state/"),
               "truncated_file": (truncate, "checksum mismatch in state/"),
               "missing_file": (delete_data_file, "missing file state/"),
               "deleted_METADATA": (delete_metadata, "missing file state/_METADATA"),
               "garbled_meta": (garble_meta, "checksum mismatch in meta/"),
               "garbled_checksums": (garble_checksums, f"unreadable {CHECKSUM_FILE}"),
               # the other steps have theirs: removing it must not switch the check off
               "deleted_checksums": (delete_checksums, f"no {CHECKSUM_FILE} while other steps")}


def assert_state_equal(state, step):
  for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(make_state(step))):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_every_save_writes_checksums_and_restores_the_newest(tmp_path):
  save_steps(tmp_path)
  sums = json.load(open(tmp_path / "3" / CHECKSUM_FILE))
  assert sums["algorithm"] == "sha256" and any(k.startswith("state/") for k in sums["files"])
  ckpt = Checkpointer(str(tmp_path))
  assert ckpt.verify(3) is None
  state, meta = ckpt.restore(make_state(0))
  assert meta == {"step": 3, "note": "saved at 3"}
  assert_state_equal(state, 3)
  ckpt.close()


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupt_newest_step_falls_back_to_the_previous(tmp_path, caplog, name):
  corrupt, reason = CORRUPTIONS[name]
  save_steps(tmp_path)
  corrupt(str(tmp_path / "3"))
  ckpt = Checkpointer(str(tmp_path))
  assert reason in ckpt.verify(3)
  with caplog.at_level(logging.WARNING, logger="explore_rl.training.checkpoint"):
    state, meta = ckpt.restore(make_state(0))
  assert meta["step"] == 2
  assert_state_equal(state, 2)
  (warning,) = [r.getMessage() for r in caplog.records]
  assert "restored step 2" in warning and "skipping newer step 3" in warning
  assert reason in warning and "\n" not in warning
  # The run goes on from step 2 and saves step 3 again: the corrupt one is kept aside.
  ckpt.save(3, make_state(30), {"step": 3})
  assert ckpt.verify(3) is None and len(os.listdir(tmp_path / "corrupt")) == 1
  state, meta = ckpt.restore(make_state(0))
  assert meta == {"step": 3} and ckpt.all_steps() == [1, 2, 3]
  assert_state_equal(state, 30)
  ckpt.close()


def test_all_steps_corrupt_is_one_user_error(tmp_path):
  save_steps(tmp_path, steps=(1, 2))
  flip_bytes(str(tmp_path / "2"))
  delete_metadata(str(tmp_path / "1"))
  ckpt = Checkpointer(str(tmp_path))
  with pytest.raises(UserError) as e:
    ckpt.restore(make_state(0))
  message = str(e.value)
  assert "\n" not in message and "no usable checkpoint" in message
  assert "step 2 (checksum mismatch" in message
  assert "step 1 (missing file state/_METADATA)" in message
  with pytest.raises(UserError, match="checkpoint step 2 .* is unusable: checksum mismatch"):
    ckpt.restore(make_state(0), step=2)  # A named step never falls back.
  ckpt.close()


def test_step_without_checksums_restores_unverified_with_a_warning(tmp_path, caplog):
  save_steps(tmp_path, steps=(1,))
  os.remove(tmp_path / "1" / CHECKSUM_FILE)  # As saved by an older version.
  ckpt = Checkpointer(str(tmp_path))
  with caplog.at_level(logging.WARNING, logger="explore_rl.training.checkpoint"):
    state, meta = ckpt.restore(make_state(0))
  assert meta["step"] == 1 and "restored it unverified" in caplog.text
  assert_state_equal(state, 1)
  ckpt.close()


def test_async_save_gets_checksums_at_close(tmp_path):
  ckpt = Checkpointer(str(tmp_path))
  ckpt.save(1, make_state(1), {"step": 1}, wait=False)
  ckpt.close()
  assert Checkpointer(str(tmp_path)).verify(1) is None
