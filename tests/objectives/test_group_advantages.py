"""GRPO / Dr. GRPO / RLOO advantages and overlong shaping."""
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import advantages, reward_shaping
from explore_rl.objectives.catalog import ADVANTAGES, REWARD_SHAPERS

ESTIMATORS = {"grpo": advantages.grpo, "dr_grpo": advantages.dr_grpo, "rloo": advantages.rloo}
_jitted = {name: jax.jit(fn) for name, fn in ESTIMATORS.items()}
# Advantages and the gradient of Σ Â² in one compiled call per (estimator, shape).
_with_grad = {
    name: jax.jit(lambda r, m, fn=fn: (fn(r, m), jax.grad(lambda x: jnp.sum(fn(x, m) ** 2))(r)))
    for name, fn in ESTIMATORS.items()
}


def test_grpo_golden():
  # r = [1, 2, 3]: mean 2, centred [-1, 0, 1], Σc² = 2.
  # ddof=1: std = sqrt(2/2) = 1 -> [-1, 0, 1] / (1 + 1e-6).
  np.testing.assert_allclose(advantages.grpo(jnp.array([1.0, 2.0, 3.0])),
                             np.array([-1.0, 0.0, 1.0]) / (1 + 1e-6), rtol=1e-6)
  # ddof=0: std = sqrt(2/3) = 0.816497 -> ±1/0.816497 = ±1.224745.
  np.testing.assert_allclose(advantages.grpo(jnp.array([1.0, 2.0, 3.0]), ddof=0),
                             [-1.224743, 0.0, 1.224743], rtol=1e-5)
  # Binary group [1, 0, 0, 0]: mean 0.25, centred [.75, -.25, -.25, -.25], Σc² = .75,
  # std = sqrt(.75/3) = .5 -> [1.5, -.5, -.5, -.5].
  np.testing.assert_allclose(advantages.grpo(jnp.array([1.0, 0.0, 0.0, 0.0])),
                             [1.5, -0.5, -0.5, -0.5], rtol=1e-5)


def test_dr_grpo_golden():
  # mean of [1, 0, 0, 1] is 0.5 -> [0.5, -0.5, -0.5, 0.5].
  np.testing.assert_allclose(advantages.dr_grpo(jnp.array([1.0, 0.0, 0.0, 1.0])),
                             [0.5, -0.5, -0.5, 0.5])


def test_rloo_golden():
  # r = [1, 2, 4]: 1 - (2+4)/2 = -2; 2 - (1+4)/2 = -0.5; 4 - (1+2)/2 = 2.5.
  np.testing.assert_allclose(advantages.rloo(jnp.array([1.0, 2.0, 4.0])), [-2.0, -0.5, 2.5],
                             rtol=1e-6)


def test_rloo_matches_leave_one_out_loop():
  rng = np.random.default_rng(0)
  r = rng.normal(size=(3, 5)).astype(np.float32)
  want = np.array([[r[b, i] - np.delete(r[b], i).mean() for i in range(5)] for b in range(3)])
  np.testing.assert_allclose(_jitted["rloo"](r), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ddof", [0, 1])
def test_grpo_matches_numpy_per_group(ddof):
  rng = np.random.default_rng(ddof)
  r = rng.normal(size=(2, 3, 6)).astype(np.float32)  # leading axes are free
  want = (r - r.mean(-1, keepdims=True)) / (r.std(-1, ddof=ddof, keepdims=True) + 1e-6)
  np.testing.assert_allclose(advantages.grpo(r, ddof=ddof), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_masked_equals_sliced(name):
  rng = np.random.default_rng(1)
  r = rng.normal(size=(4,)).astype(np.float32)
  padded = np.concatenate([r, [np.nan, 1e9]]).astype(np.float32)
  mask = np.array([1, 1, 1, 1, 0, 0], np.float32)
  got = _jitted[name](padded, mask)
  np.testing.assert_allclose(got[:4], _jitted[name](r), rtol=1e-6)
  np.testing.assert_array_equal(got[4:], 0.0)
  # An interior padding sample is as good as slicing it out too.
  inner = np.array([r[0], 7.0, r[1], r[2], r[3]], np.float32)
  got = np.asarray(_jitted[name](inner, np.array([1, 0, 1, 1, 1], np.float32)))
  np.testing.assert_allclose(got[[0, 2, 3, 4]], _jitted[name](r), rtol=1e-6)
  assert float(got[1]) == 0.0


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_degenerate_groups_are_exact_zero_with_zero_gradient(name):
  fn = ESTIMATORS[name]
  rewards = jnp.array([
      [0.1, 0.1, 0.1, 0.1],  # all equal (the fp mean of 0.1s is not exactly 0.1)
      [0.3, 5.0, 6.0, 7.0],  # a single valid sample
      [1.0, 2.0, 3.0, 4.0],  # all padding
  ])
  mask = jnp.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], jnp.float32)
  out = jax.jit(fn)(rewards, mask)
  np.testing.assert_array_equal(out, 0.0)
  grad = jax.grad(lambda r: jnp.sum(fn(r, mask) * jnp.arange(1.0, 5.0)))(rewards)
  np.testing.assert_array_equal(grad, 0.0)
  # Constant rewards without a mask too.
  np.testing.assert_array_equal(fn(jnp.full((2, 3), 0.7)), 0.0)


def test_grpo_gradient_is_finite_near_degenerate():
  # Two equal rewards and one slightly different one: tiny variance, finite gradient.
  grad = jax.grad(lambda r: jnp.sum(advantages.grpo(r) ** 2))(jnp.array([1.0, 1.0, 1.0 + 1e-4]))
  assert np.all(np.isfinite(grad))


def test_overlong_penalty_golden():
  # L_max = 20, L_cache = 4: free up to 16, then -(|y| - 16)/4, -1 from 20 on.
  lengths = jnp.array([10, 16, 17, 18, 20, 21, 100])
  np.testing.assert_allclose(
      reward_shaping.overlong_penalty(lengths, max_length=20, cache_length=4),
      [0.0, 0.0, -0.25, -0.5, -1.0, -1.0, -1.0])
  shaped = REWARD_SHAPERS.get("dapo_overlong")(
      jnp.array([1.0, 1.0]), lengths=jnp.array([3, 18]), max_length=20, cache_length=4)
  np.testing.assert_allclose(shaped, [1.0, 0.5])  # 1 + 0, 1 - 0.5
  with pytest.raises(ValueError, match="cache_length"):
    reward_shaping.overlong_penalty(lengths, max_length=4, cache_length=8)


def test_registry():
  for name in ["grpo", "dr_grpo", "rloo", "dapo"]:
    assert name in ADVANTAGES
  assert ADVANTAGES.get("dapo") is advantages.grpo
  with pytest.raises(ValueError, match="valid names: .*dr_grpo"):
    ADVANTAGES.get("gpro")


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_vmap_and_bf16(name):
  fn = ESTIMATORS[name]
  r = jnp.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]])
  np.testing.assert_allclose(jax.vmap(fn)(r), fn(r), rtol=1e-6)
  out = jax.jit(fn)(r.astype(jnp.bfloat16), jnp.ones((2, 4), jnp.bool_))
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, fn(r), rtol=1e-6)
  assert reward_shaping.overlong_penalty(jnp.array([3], jnp.int32), max_length=4,
                                     cache_length=2).dtype == jnp.float32


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    groups=st.integers(1, 3), n=st.integers(1, 5), seed=st.integers(0, 2**31 - 1),
    binary=st.booleans(), name=st.sampled_from(sorted(ESTIMATORS)),
)
def test_property_finite_and_centred(groups, n, seed, binary, name):
  rng = np.random.default_rng(seed)
  r = rng.integers(0, 2, size=(groups, n)) if binary else rng.normal(size=(groups, n)) * 10
  r = r.astype(np.float32)
  mask = (rng.uniform(size=(groups, n)) < 0.7).astype(np.float32)
  out, grad = _with_grad[name](r, mask)
  out = np.asarray(out)
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out * (1 - mask), 0.0)
  # Every estimator is centred over the valid samples of a group.
  np.testing.assert_allclose((out * mask).sum(-1), 0.0, atol=1e-3 * (1 + np.abs(out).max()))
  assert np.all(np.isfinite(grad))


def test_overlong_penalty_jits_and_vmaps():
  penalty = jax.jit(jax.vmap(lambda l: reward_shaping.overlong_penalty(
      l, max_length=20, cache_length=4)))(jnp.array([[17, 20], [10, 30]]))
  np.testing.assert_allclose(penalty, [[-0.25, -1.0], [0.0, -1.0]])
