"""Checkpoints across meshes: a run saved under `fsdp=8` restores under `data=2, fsdp=4`
and on 1 device with bit-identical parameters, and continues as the run that never
stopped (every metric to 1e-5, parameters to 1e-5)."""
import shutil

import jax
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.models import sharding
from explore_rl.training.sft import train_sft
from explore_rl.training.policy_loader import load_policy

TIMING = ("time_", "step_time", "tokens_per_s")
FSDP8 = {"data": 1, "fsdp": 8, "tensor": 1, "num_devices": 0}
MESHES = {"data2_fsdp4": {"data": 2, "fsdp": 4, "tensor": 1, "num_devices": 0},
          "one_device": {"data": 1, "fsdp": 1, "tensor": 1, "num_devices": 1}}


def _config(mesh: dict, total_steps: int):
  return load_config("sft:tiny", {"mesh": mesh, "total_steps": total_steps, "eval_every": 2,
                                  "checkpoint_every": 2, "max_response_len": 12})


def _leaves(workdir: str, mesh=None):
  return jax.tree.leaves(load_policy(workdir, mesh).params)


@pytest.mark.slow
def test_save_on_fsdp8_restore_and_continue_on_other_meshes(tmp_path):
  straight = str(tmp_path / "straight")
  train_sft(_config(FSDP8, 3), straight, progress=False)
  saved = str(tmp_path / "saved")
  train_sft(_config(FSDP8, 2), saved, progress=False)
  saved_params = [np.asarray(x) for x in _leaves(saved)]
  for name, mesh in MESHES.items():
    # The step-2 checkpoint on the new mesh: the same bits, the new mesh's shardings.
    new_mesh = sharding.make_mesh(dict(mesh))
    restored = _leaves(saved, new_mesh)
    assert all(x.sharding.mesh.shape == new_mesh.shape for x in restored)
    for a, b in zip(saved_params, restored):
      np.testing.assert_array_equal(np.asarray(b), a)
    # Training continues there as the uninterrupted fsdp=8 run.
    workdir = str(tmp_path / name)
    shutil.copytree(saved, workdir)
    train_sft(_config(mesh, 3), workdir, progress=False)
    want, got = read_metrics(straight), read_metrics(workdir)
    assert [r["step"] for r in got] == [1, 2, 3]
    for a, b in zip(want, got):
      for k, v in a.items():
        if not k.startswith(TIMING):
          np.testing.assert_allclose(b[k], v, rtol=1e-5, atol=1e-5, err_msg=f"{name} {k}")
    for a, b in zip(_leaves(straight), _leaves(workdir)):
      np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5,
                                 err_msg=name)
