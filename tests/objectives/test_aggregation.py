"""Loss aggregation: golden values, micro-batch / shard additivity, masks, dtypes."""
import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import aggregation
from explore_rl.objectives.catalog import AGGREGATIONS

MODES = ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
KW = {"seq-mean-token-sum-norm": {"norm": 4.0}}

# Two sequences of length 3 and one padding row.
LOSS = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 99.0], [7.0, 8.0, 9.0]], np.float32)
MASK = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]], np.float32)
GOLDEN = {
    # Σmℓ = 1+2+3+4+5 = 15 over 5 tokens -> 3.
    "token-mean": (15.0, 5.0, 3.0),
    # token sums 6 and 9, two valid sequences -> 7.5.
    "seq-mean-token-sum": (15.0, 2.0, 7.5),
    # token means 6/3 = 2 and 9/2 = 4.5 -> (2 + 4.5) / 2 = 3.25.
    "seq-mean-token-mean": (6.5, 2.0, 3.25),
    # 15 / C=4 = 3.75 over two sequences -> 1.875.
    "seq-mean-token-sum-norm": (3.75, 2.0, 1.875),
}


def _agg(loss, mask, mode):
  return aggregation.aggregate(loss, mask, mode=mode, **KW.get(mode, {}))


_jit_agg = jax.jit(_agg, static_argnums=2)


@pytest.mark.parametrize("mode", MODES)
def test_golden(mode):
  num, den = _agg(LOSS, MASK, mode)
  want_num, want_den, want = GOLDEN[mode]
  np.testing.assert_allclose(num, want_num, rtol=1e-6)
  np.testing.assert_allclose(den, want_den)
  np.testing.assert_allclose(aggregation.finalize(num, den), want, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("splits", [[1, 2], [2, 1], [1, 1, 1]])
def test_micro_batches_sum_to_whole_batch(mode, splits):
  rng = np.random.default_rng(0)
  loss = rng.normal(size=(3, 5)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], np.float32)
  whole = aggregation.finalize(*_jit_agg(loss, mask, mode))
  num, den, start = 0.0, 0.0, 0
  for size in splits:
    n, d = _jit_agg(loss[start:start + size], mask[start:start + size], mode)
    num, den, start = num + n, den + d, start + size
  np.testing.assert_allclose(aggregation.finalize(num, den), whole, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_data_parallel_shards_sum_to_whole_batch(mode):
  """The same additivity across a sharded batch axis with an explicit psum."""
  devices = jax.devices()[:4]
  mesh = jax.make_mesh((4,), ("data",), devices=devices,
                       axis_types=(jax.sharding.AxisType.Explicit,))
  rng = np.random.default_rng(1)
  loss = rng.normal(size=(8, 6)).astype(np.float32)
  mask = (rng.uniform(size=(8, 6)) < 0.6).astype(np.float32)
  mask[3] = 0.0  # a padding sequence on one shard

  @functools.partial(jax.shard_map, mesh=mesh, in_specs=jax.P("data"), out_specs=jax.P())
  def sharded(loss, mask):
    num, den = _agg(loss, mask, mode)
    return aggregation.finalize(jax.lax.psum(num, "data"), jax.lax.psum(den, "data"))

  whole = aggregation.finalize(*_agg(loss, mask, mode))
  spec = jax.sharding.NamedSharding(mesh, jax.P("data"))
  got = jax.jit(sharded)(jax.device_put(loss, spec), jax.device_put(mask, spec))
  np.testing.assert_allclose(got, whole, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_masked_equals_sliced(mode):
  rng = np.random.default_rng(2)
  loss = rng.normal(size=(2, 4)).astype(np.float32)
  # Padding a batch with extra (masked) tokens and (all-masked) sequences changes nothing.
  padded_loss = np.full((3, 7), np.nan, np.float32)
  padded_loss[:2, :4] = loss
  padded_mask = np.zeros((3, 7), np.float32)
  padded_mask[:2, :4] = 1.0
  sliced = aggregation.finalize(*_agg(loss, np.ones((2, 4), np.float32), mode))
  masked = aggregation.finalize(*_agg(padded_loss, padded_mask, mode))
  np.testing.assert_allclose(masked, sliced, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_ignores_padding_garbage(mode):
  loss = jnp.array([[1.0, jnp.inf], [jnp.nan, 2.0]])
  mask = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  grad = jax.grad(lambda l: aggregation.finalize(*_agg(l, mask, mode)))(loss)
  assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(grad * (1 - mask), 0.0)


@pytest.mark.parametrize("mode", MODES)
def test_all_zero_mask_gives_finite_zero(mode):
  num, den = _jit_agg(jnp.ones((2, 3)), jnp.zeros((2, 3)), mode)
  assert float(num) == 0.0 and float(den) == 0.0
  assert float(aggregation.finalize(num, den)) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_bf16_input_gives_fp32_output(mode):
  num, den = _agg(jnp.asarray(LOSS, jnp.bfloat16), jnp.asarray(MASK, jnp.bool_), mode)
  assert num.dtype == jnp.float32 and den.dtype == jnp.float32
  np.testing.assert_allclose(aggregation.finalize(num, den), GOLDEN[mode][2], rtol=1e-2)


@pytest.mark.parametrize("mode", MODES)
def test_vmap_over_mini_batches_matches_loop(mode):
  loss = jnp.stack([LOSS, 2 * LOSS])  # [2, B, T]
  mask = jnp.stack([MASK, MASK])
  num, den = jax.vmap(lambda l, m: _agg(l, m, mode))(loss, mask)
  np.testing.assert_allclose(aggregation.finalize(num, den),
                             [GOLDEN[mode][2], 2 * GOLDEN[mode][2]], rtol=1e-6)


def test_registry_and_errors():
  assert set(MODES) <= set(AGGREGATIONS.names())
  with pytest.raises(ValueError, match="valid names: .*token-mean"):
    aggregation.aggregate(LOSS, MASK, mode="token-sum")
  with pytest.raises(ValueError, match="positive"):
    aggregation.seq_mean_token_sum_norm(LOSS, MASK, norm=0.0)


def test_masked_mean():
  x = jnp.array([1.0, jnp.nan, 3.0])
  # (1 + 3) / 2 = 2; the NaN is masked.
  np.testing.assert_allclose(aggregation.masked_mean(x, jnp.array([1, 0, 1])), 2.0)
  assert float(aggregation.masked_mean(x, jnp.zeros(3))) == 0.0


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    b=st.integers(1, 4), t=st.integers(1, 5), seed=st.integers(0, 2**31 - 1),
    mode=st.sampled_from(MODES),
)
def test_property_finite(b, t, seed, mode):
  rng = np.random.default_rng(seed)
  loss = (rng.normal(size=(b, t)) * 100).astype(np.float32)
  mask = (rng.uniform(size=(b, t)) < rng.uniform()).astype(np.float32)
  num, den = _agg(loss, mask, mode)
  value = aggregation.finalize(num, den)
  assert np.isfinite(value) and np.isfinite(num) and np.isfinite(den)
  # The denominator counts exactly the valid tokens / valid sequences.
  want_den = mask.sum() if mode == "token-mean" else (mask.sum(-1) > 0).sum()
  assert float(den) == want_den
