"""Samplers run data-parallel on a mesh: each device decodes its share of the rows.

`sharding.shard_batch` puts the prompt batch over the mesh's batch axes when the
policy's parameters live on a mesh (benchmarks/README.md: with unsharded prompts and
replicated parameters every device decoded the whole batch). Invariants: the placement
(batch dim over (data, fsdp), each device holding its rows), the fallbacks (no mesh, a
batch the devices do not divide), and sharded == unsharded for the rollout the default
sampler returns, greedy and at T = 1 (the draws do not depend on the layout).
"""
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from explore_rl.config_files import load_config
from explore_rl.models import sharding
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import IndependentSampler, Policies
from explore_rl.tasks import get_task
from explore_rl.training.policy_loader import fresh_policy

N, M, P_LEN = 2, 8, 24


@pytest.fixture(scope="module")
def policies():
  """(one-device policy, the same weights replicated over a data mesh of all devices)."""
  c = load_config("grpo:tiny")
  one = fresh_policy(c, sharding.make_mesh({"num_devices": 1}))
  mesh = sharding.make_mesh({"data": -1, "fsdp": 1})
  assert mesh.size == 8   # tests/conftest.py: 8 virtual CPU devices
  params = jax.device_put(jax.device_get(one.params), sharding.replicated(mesh))
  return one, one.with_params(params)


def test_shard_batch_places_rows_over_the_mesh_and_falls_back(policies):
  _, on_mesh = policies
  tokens = np.arange(16 * 3, dtype=np.int32).reshape(16, 3)
  valid = np.ones((16, 3), bool)
  t, v = sharding.shard_batch(on_mesh.params, tokens, valid)
  assert t.sharding.spec == P(sharding.BATCH_AXES, None) and v.sharding.spec == t.sharding.spec
  rows = sorted((s.index[0].start, s.data.shape[0]) for s in t.addressable_shards)
  assert rows == [(2 * i, 2) for i in range(8)]            # 2 rows per device
  np.testing.assert_array_equal(np.asarray(t), tokens)
  # 12 rows do not divide over 8 devices; parameters on one device: plain device arrays.
  for like, x in ((on_mesh.params, tokens[:12]), (policies[0].params, tokens)):
    (out,) = sharding.shard_batch(like, x)
    assert len(out.sharding.device_set) == 1
    np.testing.assert_array_equal(np.asarray(out), x)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_sharded_sampler_equals_one_device(policies, temperature):
  one, on_mesh = policies
  sampler = IndependentSampler(sampling=SamplingConfig(temperature=temperature,
                                                       max_new_tokens=M), prompt_len=P_LEN)
  task = get_task("partition")
  problems = [task.sample(np.random.default_rng(i)) for i in range(8)]
  rng = jax.random.key(7)
  ref = sampler(Policies(one), problems, rng, num_samples=N)
  out = sampler(Policies(on_mesh), problems, rng, num_samples=N)
  # Rows stay split: each device holds the N samples of its own prompt.
  assert sorted(s.data.shape[0] for s in out.tokens.addressable_shards) == [N] * 8
  np.testing.assert_array_equal(np.asarray(out.tokens), np.asarray(ref.tokens))
  np.testing.assert_array_equal(np.asarray(out.mask), np.asarray(ref.mask))
  for a, b in ((out.policy_logprobs, ref.policy_logprobs),
               (out.behaviour_logprobs, ref.behaviour_logprobs), (out.entropy, ref.entropy)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
