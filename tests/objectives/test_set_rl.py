"""Set RL: subsets, set functions and marginal set advantages against brute force."""
import itertools
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import set_rl
from explore_rl.objectives.catalog import ADVANTAGES, SET_FUNCTIONS

SETTINGS = hypothesis.settings(max_examples=20, deadline=None)

# Plain-Python set functions: the reference the vectorised ones are checked against.
PY_SET_FNS = {
    "mean": lambda r, c: sum(r) / len(r),
    "pass": lambda r, c: float(any(x > 0 for x in r)),
    "max": lambda r, c: max(r),
    "polychromatic": lambda r, c: sum(r) / len(r) * len({x for x in c if x != -1}) / len(r),
}


def brute_force_advantages(rewards, clusters, set_size, name, reduce):
  """Loops over every subset: A_j = f(G_j) − mean f, summed / averaged per member."""
  n_samples = len(rewards)
  subsets = list(itertools.combinations(range(n_samples), set_size))
  scores = [PY_SET_FNS[name]([rewards[i] for i in g], [clusters[i] for i in g]) for g in subsets]
  base = sum(scores) / len(scores)
  adv = []
  for i in range(n_samples):
    holding = [s - base for g, s in zip(subsets, scores) if i in g]
    adv.append(sum(holding) / (len(holding) if reduce == "mean" else 1))
  return np.array(adv)


@st.composite
def groups(draw, max_samples=8, max_set=4):
  n_samples = draw(st.integers(2, max_samples))
  set_size = draw(st.integers(1, min(max_set, n_samples)))
  rewards = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, -0.5]),
                          min_size=n_samples, max_size=n_samples))
  clusters = draw(st.lists(st.integers(-1, 3), min_size=n_samples, max_size=n_samples))
  return np.array(rewards, np.float32), np.array(clusters, np.int32), set_size


_adv = jax.jit(set_rl.set_rl_advantages,
               static_argnames=("set_fn", "set_size", "reduce", "num_subsets"))
_poly = jax.jit(set_rl.polychromatic_scores, static_argnames="degenerate_id")


def test_all_subsets_is_itertools_combinations():
  subsets = set_rl.all_subsets(6, 3)
  assert subsets.dtype == np.int32 and subsets.shape == (20, 3)
  np.testing.assert_array_equal(subsets, list(itertools.combinations(range(6), 3)))
  assert not subsets.flags.writeable
  with pytest.raises(ValueError, match="set_size"):
    set_rl.all_subsets(3, 4)


@hypothesis.given(groups())
@SETTINGS
def test_polychromatic_scores_brute_force(group):
  rewards, clusters, set_size = group
  subsets = set_rl.all_subsets(len(rewards), set_size)
  got = _poly(rewards, clusters, subsets)
  want = [PY_SET_FNS["polychromatic"](rewards[list(g)], clusters[list(g)]) for g in subsets]
  np.testing.assert_allclose(got, want, atol=1e-6)


@hypothesis.given(groups(), st.sampled_from(sorted(PY_SET_FNS)), st.sampled_from(["sum", "mean"]))
@SETTINGS
def test_marginal_advantages_brute_force(group, name, reduce):
  rewards, clusters, set_size = group
  got = _adv(rewards, cluster_ids=clusters, set_fn=name, set_size=set_size, reduce=reduce)
  want = brute_force_advantages(rewards.tolist(), clusters.tolist(), set_size, name, reduce)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_responses_in_no_subset_get_zero():
  # Hand-picked subsets of N=4: response 3 is in none. Scores 3 and 1, mean 2 -> A = (1, -1).
  subsets = np.array([[0, 1], [1, 2]], np.int32)
  scores = jnp.array([3.0, 1.0])
  np.testing.assert_allclose(set_rl.marginal_set_advantages(scores, subsets, 4, reduce="sum"),
                             [1.0, 0.0, -1.0, 0.0])
  np.testing.assert_allclose(set_rl.marginal_set_advantages(scores, subsets, 4, reduce="mean"),
                             [1.0, 0.0, -1.0, 0.0])
  with pytest.raises(ValueError, match="sum, mean"):
    set_rl.marginal_set_advantages(scores, subsets, 4, reduce="max")


def test_reduce_defaults_to_the_mean_over_the_sets_holding_each_response():
  """Poly-EPO averages; the sum over all C(8, 4) subsets is C(7, 3) = 35 times larger."""
  r = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 0.0, 1.0, 0.25], np.float32)
  clusters = np.array([0, 1, 2, 0, 1, 3, 2, -1], np.int32)
  default = _adv(r, cluster_ids=clusters, set_size=4)
  np.testing.assert_allclose(default, _adv(r, cluster_ids=clusters, set_size=4, reduce="mean"))
  np.testing.assert_allclose(_adv(r, cluster_ids=clusters, set_size=4, reduce="sum"),
                             35 * np.asarray(default), rtol=1e-5, atol=1e-6)
  assert np.abs(np.asarray(default)).max() > 0.01
  subsets = set_rl.all_subsets(8, 4)
  scores = set_rl.polychromatic_scores(r, clusters, subsets)
  np.testing.assert_allclose(set_rl.marginal_set_advantages(scores, subsets, 8), default)


@hypothesis.given(st.lists(st.floats(-2, 2, width=32), min_size=2, max_size=8),
                  st.sampled_from(["sum", "mean"]))
@SETTINGS
def test_set_size_one_gives_centred_rewards(rewards, reduce):
  r = np.array(rewards, np.float32)
  got = _adv(r, set_fn="mean", set_size=1, reduce=reduce)
  np.testing.assert_allclose(got, r - r.mean(), atol=1e-5)


@hypothesis.given(st.integers(2, 8).flatmap(
    lambda n: st.tuples(st.lists(st.floats(-2, 2, width=32), min_size=n, max_size=n),
                        st.integers(1, min(4, n)))))
@SETTINGS
def test_mean_reward_gives_scaled_centred_rewards(case):
  rewards, set_size = case
  r = np.array(rewards, np.float32)
  n_samples = len(r)
  # Σ_{G∋i} mean_G r = [(C(N−1,n−1) − C(N−2,n−2)) r_i + C(N−2,n−2) Σ_j r_j] / n, and the
  # baseline removes C(N−1,n−1)·mean r; with (n−1)C(N−1,n−1) = (N−1)C(N−2,n−2) this is
  # C(N−2,n−1)/n · (r_i − mean r). The mean form divides by the C(N−1,n−1) sets holding i.
  alpha = math.comb(n_samples - 2, set_size - 1) / set_size
  got = _adv(r, set_fn="mean", set_size=set_size, reduce="sum")
  np.testing.assert_allclose(got, alpha * (r - r.mean()), atol=1e-4)
  got = _adv(r, set_fn="mean", set_size=set_size, reduce="mean")
  held = math.comb(n_samples - 1, set_size - 1)
  np.testing.assert_allclose(got, alpha / held * (r - r.mean()), atol=1e-5)


# --- exact unbiasedness over a small discrete policy ---------------------------------

OUTCOME_REWARDS = np.array([1.0, 0.0, 1.0, 0.5], np.float32)
OUTCOME_CLUSTERS = np.array([0, 1, 2, -1], np.int32)
LOGITS = jnp.array([0.3, -0.2, 0.1, 0.5])


def _tuple_probs(logits, tuples):
  return jnp.prod(jax.nn.softmax(logits)[tuples], axis=-1)  # [T]


def _objective(logits, name, set_size):
  """J_f(θ) = Σ over every n-tuple of outcomes of P(tuple) · f(tuple), f in plain Python."""
  tuples = np.array(list(itertools.product(range(len(OUTCOME_REWARDS)), repeat=set_size)))
  f = np.array([PY_SET_FNS[name](OUTCOME_REWARDS[t].tolist(), OUTCOME_CLUSTERS[t].tolist())
                for t in tuples], np.float32)
  return jnp.sum(_tuple_probs(logits, tuples) * f)


@pytest.mark.parametrize("name,num_samples,set_size",
                         [("polychromatic", 4, 2), ("polychromatic", 4, 3), ("pass", 4, 2),
                          ("pass", 5, 3), ("max", 4, 2)])
def test_marginal_advantages_are_exactly_unbiased(name, num_samples, set_size):
  # E[Σ_i ∇log π(y_i) Â_i] over all R^N samples == M ∇J_f, M = C(N,n) − C(N−1,n−1).
  outcomes = len(OUTCOME_REWARDS)
  samples = np.array(list(itertools.product(range(outcomes), repeat=num_samples)))  # [S, N]
  adv = _adv(jnp.asarray(OUTCOME_REWARDS[samples]),
             cluster_ids=jnp.asarray(OUTCOME_CLUSTERS[samples]), set_fn=name,
             set_size=set_size, reduce="sum")  # [S, N]

  @jax.jit
  def expectation(logits):
    score = jax.nn.one_hot(samples, outcomes) - jax.nn.softmax(logits)  # ∇_θ log π(y)
    return jnp.einsum("s,sn,sno->o", _tuple_probs(logits, samples), adv, score)

  estimate = expectation(LOGITS)
  grad = jax.jit(jax.grad(_objective), static_argnums=(1, 2))(LOGITS, name, set_size)
  scale = math.comb(num_samples, set_size) - math.comb(num_samples - 1, set_size - 1)
  assert float(jnp.linalg.norm(grad)) > 1e-2  # the check is not vacuous
  np.testing.assert_allclose(estimate, scale * grad, atol=1e-5)


def test_sampled_subsets_are_exactly_unbiased():
  # K of the C = C(N,n) subsets, uniform without replacement: averaging Â over all C(C, K)
  # choices gives E[Σ_i ∇log π(y_i) Â_i] = M_K ∇J_f, M_K = (K−1)(C − C(N−1,n−1))/(C − 1)
  # (= M at K = C). N=4, n=2: C = 6, K = 3 -> M_K = 2·(6 − 3)/5 = 6/5.
  num_samples, set_size, k = 4, 2, 3
  outcomes = len(OUTCOME_REWARDS)
  samples = np.array(list(itertools.product(range(outcomes), repeat=num_samples)))  # [S, N]
  rewards, clusters = OUTCOME_REWARDS[samples], OUTCOME_CLUSTERS[samples]
  adv_fn = jax.jit(lambda subsets: set_rl.marginal_set_advantages(
      set_rl.polychromatic_scores(rewards, clusters, subsets), subsets, num_samples,
      reduce="sum"))
  choices = list(itertools.combinations(set_rl.all_subsets(num_samples, set_size), k))
  adv = sum(adv_fn(np.stack(c)) for c in choices) / len(choices)  # [S, N]
  score = jax.nn.one_hot(samples, outcomes) - jax.nn.softmax(LOGITS)
  estimate = jnp.einsum("s,sn,sno->o", _tuple_probs(LOGITS, samples), adv, score)
  grad = jax.grad(_objective)(LOGITS, "polychromatic", set_size)
  np.testing.assert_allclose(estimate, 6 / 5 * grad, atol=1e-6)


# --- sampled subsets ------------------------------------------------------------------


def test_sample_subsets_distinct_sorted_and_complete():
  draw = jax.jit(set_rl.sample_subsets, static_argnums=(1, 2, 3))
  subsets = np.asarray(draw(jax.random.key(0), 7, 3, 12))
  assert subsets.shape == (12, 3) and subsets.dtype == np.int32
  assert len({tuple(g) for g in subsets}) == 12
  assert np.all(np.diff(subsets, axis=-1) > 0) and subsets.min() >= 0 and subsets.max() < 7
  # K = C(N, n): every subset exactly once.
  everything = np.asarray(draw(jax.random.key(1), 5, 2, 10))
  assert sorted(map(tuple, everything)) == list(itertools.combinations(range(5), 2))
  with pytest.raises(ValueError, match="num_subsets"):
    set_rl.sample_subsets(jax.random.key(0), 5, 2, 11)


def test_sample_subsets_is_uniform():
  # 4 of the C(5, 2) = 10 subsets: each subset is included with probability 4/10.
  keys = jax.random.split(jax.random.key(3), 4000)
  draws = jax.vmap(lambda k: set_rl.sample_subsets(k, 5, 2, 4))(keys)  # [4000, 4, 2]
  table = {g: i for i, g in enumerate(itertools.combinations(range(5), 2))}
  counts = np.zeros(10)
  for rows in np.asarray(draws):
    for g in rows:
      counts[table[tuple(g)]] += 1
  # Binomial(4000, 0.4) per subset: sd ≈ 31, so ±150 is ~5 sd.
  np.testing.assert_allclose(counts, 1600, atol=150)


def test_sampled_subsets_per_prompt_match_loops():
  rewards = jnp.array([[1.0, 0.0, 0.5, 1.0, 0.0, 0.25], [0.0, 0.0, 1.0, 0.5, 0.5, 1.0]])
  clusters = jnp.array([[0, 1, -1, 0, 2, 1], [0, 0, 1, -1, 2, 3]])
  rng = jax.random.key(7)
  got = _adv(rewards, cluster_ids=clusters, set_size=3, num_subsets=5, rng=rng, reduce="sum")
  keys = jax.random.split(rng, 2)
  for b in range(2):
    subsets = np.asarray(set_rl.sample_subsets(keys[b], 6, 3, 5))
    r, c = np.asarray(rewards[b]).tolist(), np.asarray(clusters[b]).tolist()
    scores = [PY_SET_FNS["polychromatic"]([r[i] for i in g], [c[i] for i in g]) for g in subsets]
    base = sum(scores) / 5
    want = [sum(s - base for g, s in zip(subsets, scores) if i in g) for i in range(6)]
    np.testing.assert_allclose(got[b], want, atol=1e-6)
  with pytest.raises(ValueError, match="rng"):
    set_rl.set_rl_advantages(rewards, cluster_ids=clusters, set_size=3, num_subsets=5)


# --- jit, vmap, edge cases ------------------------------------------------------------


def test_jit_and_vmap_match_eager():
  rng = np.random.default_rng(0)
  rewards = rng.integers(0, 2, (3, 6)).astype(np.float32)
  clusters = rng.integers(-1, 3, (3, 6)).astype(np.int32)
  eager = set_rl.set_rl_advantages(rewards, cluster_ids=clusters, set_size=3)
  np.testing.assert_allclose(_adv(rewards, cluster_ids=clusters, set_size=3), eager, atol=1e-6)
  per_prompt = jax.vmap(lambda r, c: set_rl.set_rl_advantages(r, cluster_ids=c, set_size=3))
  np.testing.assert_allclose(jax.jit(per_prompt)(rewards, clusters), eager, atol=1e-6)


@pytest.mark.parametrize("name", sorted(PY_SET_FNS))
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_all_equal_rewards_give_zero_without_nan(name, value):
  rewards = jnp.full((2, 8), value)
  clusters = jnp.zeros((2, 8), jnp.int32)  # one strategy: every subset scores the same
  for reduce in ("sum", "mean"):
    adv = _adv(rewards, cluster_ids=clusters, set_fn=name, set_size=4, reduce=reduce)
    np.testing.assert_array_equal(adv, 0.0)


def test_degenerate_only_sets_score_zero():
  rewards = jnp.array([1.0, 1.0, 1.0, 0.5])
  clusters = jnp.array([-1, -1, 4, -1])
  subsets = set_rl.all_subsets(4, 2)  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
  # Sets without response 2 hold only degenerate responses -> 0; with it: mean r · 1/2.
  np.testing.assert_allclose(set_rl.polychromatic_scores(rewards, clusters, subsets),
                             [0.0, 0.5, 0.0, 0.5, 0.0, 0.375])
  # A different degenerate id makes -1 an ordinary cluster: {-1, 4} are two strategies.
  np.testing.assert_allclose(
      set_rl.polychromatic_scores(rewards, clusters, subsets, degenerate_id=-2)[1], 1.0)


def test_bf16_rewards_give_fp32_and_registries():
  adv = set_rl.set_rl_advantages(jnp.array([1.0, 0.0, 1.0], jnp.bfloat16), set_fn="max",
                                 set_size=2)
  assert adv.dtype == jnp.float32
  assert {"mean", "pass", "max", "polychromatic"} <= set(SET_FUNCTIONS.names())
  assert ADVANTAGES.get("set_rl") is set_rl.set_rl_advantages
  with pytest.raises(ValueError, match="cluster ids"):
    set_rl.set_rl_advantages(jnp.ones(4), set_size=2)
