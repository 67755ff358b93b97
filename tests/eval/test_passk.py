"""pass@k / max@k / maj@k: exact rational arithmetic, brute force over subsets, jit/vmap."""
import collections
import fractions
import itertools
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.eval import passk

SETTINGS = hypothesis.settings(max_examples=40, deadline=None)


def exact_pass_at_k(n, c, k):
  return 1 - fractions.Fraction(math.comb(n - c, k), math.comb(n, k))


@st.composite
def nck(draw, max_n=200):
  n = draw(st.integers(1, max_n))
  return n, draw(st.integers(0, n)), draw(st.integers(1, n))


@hypothesis.given(nck())
@SETTINGS
def test_pass_at_k_matches_fractions(case):
  n, c, k = case
  want = float(exact_pass_at_k(n, c, k))
  got = passk.pass_at_k(n, c, k)
  assert isinstance(got, np.ndarray) and got.dtype == np.float64
  np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("k", [1, 3, 17, 100])
def test_pass_at_k_jax_matches_fractions(k):
  rng = np.random.default_rng(k)
  n = rng.integers(k, 201, 64)
  c = rng.integers(0, n + 1)
  want = [float(exact_pass_at_k(int(a), int(b), k)) for a, b in zip(n, c)]
  got = jax.jit(passk.pass_at_k, static_argnums=2)(jnp.asarray(n), jnp.asarray(c), k)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n,c,k", [(1024, 1, 1), (1024, 1, 512), (1024, 3, 1000),
                                   (1024, 700, 300), (1024, 100, 8), (2048, 2, 1024)])
def test_pass_at_k_large_n(n, c, k):
  np.testing.assert_allclose(passk.pass_at_k(n, c, k), float(exact_pass_at_k(n, c, k)),
                             rtol=1e-12)


def test_pass_at_k_edges_and_broadcasting():
  # n − c < k: every k-subset holds a correct sample.
  assert passk.pass_at_k(10, 8, 3) == 1.0 and passk.pass_at_k(5, 5, 1) == 1.0
  assert passk.pass_at_k(10, 0, 3) == 0.0 and passk.pass_at_k(10, 4, 0) == 0.0
  # 1 − C(3,2)/C(5,2) = 1 − 3/10.
  np.testing.assert_allclose(passk.pass_at_k(5, 2, 2), 0.7)
  n = np.array([[4], [8], [16]])
  c = np.array([0, 1, 2, 4])
  got = passk.pass_at_k(n, c, 2)
  assert got.shape == (3, 4)
  for i, j in itertools.product(range(3), range(4)):
    np.testing.assert_allclose(got[i, j], float(exact_pass_at_k(n[i, 0], c[j], 2)), rtol=1e-12)
  with pytest.raises(ValueError, match="Python int"):
    passk.pass_at_k(4, 1, 1.5)


def test_pass_at_k_jit_and_vmap():
  c = jnp.arange(17)
  fn = jax.jit(lambda c: passk.pass_at_k(16, c, 4))
  want = [float(exact_pass_at_k(16, int(ci), 4)) for ci in c]
  np.testing.assert_allclose(fn(c), want, rtol=1e-5)
  np.testing.assert_allclose(jax.vmap(fn)(c), want, rtol=1e-5)
  assert not np.any(np.isnan(fn(c)))


@st.composite
def reward_rows(draw, max_n=8):
  n = draw(st.integers(1, max_n))
  rewards = draw(st.lists(st.floats(-3, 3, width=32), min_size=n, max_size=n))
  return np.array(rewards, np.float32), draw(st.integers(1, n))


_max_at_k = jax.jit(passk.max_at_k, static_argnums=1)


@hypothesis.given(reward_rows())
@SETTINGS
def test_max_at_k_brute_force(case):
  rewards, k = case
  combos = list(itertools.combinations(rewards.tolist(), k))
  want = sum(max(g) for g in combos) / len(combos)
  np.testing.assert_allclose(passk.max_at_k(rewards, k), want, atol=1e-6)
  np.testing.assert_allclose(_max_at_k(jnp.asarray(rewards), k), want, atol=1e-5)


def test_max_at_k_binary_is_pass_at_k_and_batches():
  rng = np.random.default_rng(0)
  rewards = (rng.random((5, 12)) < 0.3).astype(np.float64)
  for k in (1, 3, 12):
    np.testing.assert_allclose(passk.max_at_k(rewards, k),
                               passk.pass_at_k(12, rewards.sum(-1), k), rtol=1e-12)
  np.testing.assert_allclose(jax.vmap(lambda r: passk.max_at_k(r, 3))(jnp.asarray(rewards)),
                             passk.max_at_k(rewards, 3), rtol=1e-5)
  np.testing.assert_array_equal(passk.max_at_k(np.zeros((2, 4)), 2), 0.0)
  np.testing.assert_allclose(passk.order_statistic_weights(9, 4).sum(), 1.0, rtol=1e-15)
  with pytest.raises(ValueError, match="k <= n"):
    passk.max_at_k(rewards, 13)


def brute_force_maj(ids, correct, k):
  """Mean over k-subsets of the accuracy of a majority vote with random tie-breaks."""
  total = 0.0
  combos = list(itertools.combinations(range(len(ids)), k))
  for g in combos:
    counts = collections.Counter(ids[i] for i in g if ids[i] >= 0)
    if counts:
      top = max(counts.values())
      winners = [a for a, v in counts.items() if v == top]
      right = {ids[i] for i in g if correct[i]}
      total += sum(a in right for a in winners) / len(winners)
  return total / len(combos)


@st.composite
def votes(draw, max_n=7):
  n = draw(st.integers(1, max_n))
  ids = draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n))
  answer = draw(st.integers(0, 3))
  return np.array(ids), np.array(ids) == answer, draw(st.integers(1, n))


@hypothesis.given(votes())
@SETTINGS
def test_maj_at_k_brute_force(case):
  ids, correct, k = case
  want = brute_force_maj(ids.tolist(), correct.tolist(), k)
  np.testing.assert_allclose(passk.maj_at_k(ids, correct, k), want, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_maj_at_k_jax_matches_numpy(k):
  rng = np.random.default_rng(k)
  ids = rng.integers(-1, 3, (16, 6))
  correct = ids == 1
  got = jax.jit(passk.maj_at_k, static_argnums=2)(jnp.asarray(ids), jnp.asarray(correct), k)
  np.testing.assert_allclose(got, passk.maj_at_k(ids, correct, k), atol=1e-6)


def test_maj_at_k_sampled_is_unbiased():
  ids = np.array([0, 0, 1, 1, 1, 2, -1, 0])
  correct = ids == 0
  exact = passk.maj_at_k(ids, correct, 3)
  keys = jax.random.split(jax.random.key(0), 400)
  draws = jax.jit(jax.vmap(
      lambda key: passk.maj_at_k(ids, correct, 3, num_subsets=10, rng=key)))(keys)
  # 10 of the 56 subsets per draw; 400 draws: the sd of the mean is < 0.01.
  assert abs(float(draws.mean()) - exact) < 0.03
  assert float(draws.std()) > 0  # really sampled
  with pytest.raises(ValueError, match="rng"):
    passk.maj_at_k(ids, correct, 3, num_subsets=10)


def test_curves_mean_stderr_and_metrics():
  assert passk.k_values(8) == (1, 2, 4, 8) and passk.k_values(6) == (1, 2, 4, 6)
  assert passk.k_values(1) == (1,)
  num_correct = np.array([0, 2, 8])
  curve = passk.pass_at_k_curve(num_correct, 8)
  # k=1: per-prompt c/n = 0, 0.25, 1 -> mean 5/12; stderr = std(ddof=1)/√3.
  per = np.array([0.0, 0.25, 1.0])
  np.testing.assert_allclose(curve.mean[0], per.mean())
  np.testing.assert_allclose(curve.stderr[0], per.std(ddof=1) / np.sqrt(3))
  # k=8 = n: pass iff any correct -> 0, 1, 1.
  np.testing.assert_allclose(curve.mean[-1], 2 / 3)
  metrics = curve.metrics("pass")
  assert set(metrics) == {f"pass@{k}{s}" for k in (1, 2, 4, 8) for s in ("", "_stderr")}
  jitted = jax.jit(lambda c: passk.pass_at_k_curve(c, 8))(jnp.asarray(num_correct))
  np.testing.assert_allclose(jitted.mean, curve.mean, rtol=1e-6)
  np.testing.assert_allclose(jitted.stderr, curve.stderr, rtol=1e-5)

  rewards = np.array([[0.1, 0.9, 0.5, 0.2], [1.0, 1.0, 1.0, 1.0]])
  curve = passk.max_at_k_curve(rewards)
  assert curve.ks == (1, 2, 4)
  np.testing.assert_allclose(curve.mean, [(0.425 + 1) / 2, ((0.9 * 3 + 0.5 * 2 + 0.2) / 6 + 1) / 2,
                                          (0.9 + 1) / 2])
  single = passk.max_at_k_curve(rewards[:1])
  np.testing.assert_array_equal(single.stderr, 0.0)

  ids = np.array([[0, 0, 1, -1], [2, 2, 2, 2]])
  curve = passk.maj_at_k_curve(ids, ids == 0)
  np.testing.assert_allclose(curve.mean, [
      np.mean([brute_force_maj(ids[0].tolist(), (ids[0] == 0).tolist(), k), 0.0])
      for k in (1, 2, 4)])
  sampled = jax.jit(lambda key: passk.maj_at_k_curve(ids, ids == 0, num_subsets=2, rng=key))(
      jax.random.key(1))
  assert sampled.ks == (1, 2, 4) and np.all(np.isfinite(np.asarray(sampled.mean)))
