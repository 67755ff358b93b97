"""Mesh + sharding rules on 8 virtual CPU devices (set by tests/conftest.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.models import sharding, transformer as tr
from explore_rl.models.config import get_preset

pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (virtual) devices")


@pytest.fixture(scope="module")
def model():
  return tr.init(get_preset("tiny"), seed=0)


def test_make_mesh_sizes_and_errors():
  assert dict(sharding.make_mesh({"fsdp": -1}).shape) == {"data": 1, "fsdp": 8, "tensor": 1}
  assert dict(sharding.make_mesh({"data": 2, "fsdp": -1, "tensor": 2}).shape) == {
      "data": 2, "fsdp": 2, "tensor": 2}
  with pytest.raises(ValueError, match="valid"):
    sharding.make_mesh({"pipeline": 2})
  with pytest.raises(ValueError, match="does not divide"):
    sharding.make_mesh({"data": 3})
  with pytest.raises(ValueError, match="at most one"):
    sharding.make_mesh({"data": -1, "fsdp": -1})


@pytest.mark.parametrize("shape", [{"fsdp": 8}, {"data": 2, "fsdp": 2, "tensor": 2}])
def test_sharded_forward_equals_unsharded(model, shape):
  graphdef, params = model
  mesh = sharding.make_mesh(shape)
  tokens = jnp.asarray(np.random.default_rng(0).integers(3, 100, (8, 12)), jnp.int32)
  want = jax.jit(tr.forward, static_argnums=0)(graphdef, params, tokens)
  sparams = sharding.shard_params(params, mesh)
  stokens = jax.device_put(tokens, sharding.batch_sharding(mesh, 2))
  got = jax.jit(tr.forward, static_argnums=0)(graphdef, sparams, stokens)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)


def test_fsdp_holds_one_eighth_of_the_parameter_bytes_per_device(model):
  _, params = model
  mesh = sharding.make_mesh({"fsdp": 8})
  per_device = sharding.bytes_per_device(sharding.shard_params(params, mesh))
  total = sum(x.nbytes for x in jax.tree.leaves(params))
  assert len(per_device) == 8
  # Only the RMSNorm scales (64 floats per norm) stay replicated.
  for nbytes in per_device.values():
    assert nbytes == pytest.approx(total / 8, rel=0.05)


def test_rules_replicate_dims_the_mesh_does_not_divide():
  mesh = sharding.make_mesh({"fsdp": 8})
  assert sharding.param_spec("layers.0.mlp.up_proj.kernel", (64, 128), mesh) == \
      jax.sharding.PartitionSpec("fsdp", None)
  assert sharding.param_spec("layers.0.mlp.up_proj.kernel", (60, 128), mesh) == \
      jax.sharding.PartitionSpec(None, None)
  assert sharding.param_spec("norm.scale", (64,), mesh) == jax.sharding.PartitionSpec(None)
