"""PKPO, pass@k analytic, BoN-aware and grpo_passk advantages: brute force and exact gradients."""
import itertools
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import advantages, set_rl
from explore_rl.objectives.catalog import ADVANTAGES

SETTINGS = hypothesis.settings(max_examples=25, deadline=None)

_pkpo = jax.jit(advantages.pkpo, static_argnums=1)
_analytic = jax.jit(advantages.passk_analytic, static_argnums=1)
_bon = jax.jit(advantages.bon_advantages, static_argnames=("n_bon", "clip"))


def brute_force_pkpo(g, k):
  """(1/C(n,k)) Σ_{|I|=k, i∈I} (max_I g − max_{I∖i} g); k = 1: (g_i − mean_{j≠i} g)/n."""
  n = len(g)
  if k == 1:
    return np.array([(g[i] - (sum(g) - g[i]) / max(n - 1, 1)) / n if n > 1 else 0.0
                     for i in range(n)])
  out = np.zeros(n)
  for subset in itertools.combinations(range(n), k):
    for i in subset:
      out[i] += max(g[j] for j in subset) - max(g[j] for j in subset if j != i)
  return out / math.comb(n, k)


@st.composite
def reward_groups(draw, values=st.sampled_from([0.0, 0.25, 0.5, 1.0, -1.0]) | st.floats(-2, 2)):
  n = draw(st.integers(1, 8))
  rewards = draw(st.lists(values, min_size=n, max_size=n))
  return np.array(rewards, np.float32), draw(st.integers(1, n))


@hypothesis.given(reward_groups())
@SETTINGS
def test_pkpo_brute_force(case):
  rewards, k = case
  want = brute_force_pkpo(rewards.astype(np.float64).tolist(), k)
  np.testing.assert_allclose(_pkpo(rewards, k), want, atol=1e-6)


@hypothesis.given(reward_groups(values=st.sampled_from([0.0, 1.0])))
@SETTINGS
def test_pkpo_binary_closed_form(case):
  # Correct samples: Σ over k-subsets where i is the max and the runner-up is 0: those
  # whose other k−1 members are all incorrect -> C(n−c, k−1)/C(n,k); incorrect: 0.
  rewards, k = case
  hypothesis.assume(k >= 2)
  n, c = len(rewards), int(rewards.sum())
  want = np.where(rewards > 0, math.comb(n - c, k - 1) / math.comb(n, k), 0.0)
  np.testing.assert_allclose(_pkpo(rewards, k), want, atol=1e-6)


@hypothesis.given(st.lists(st.sampled_from([0.0, 0.3, 0.7, 1.0]), min_size=2, max_size=8))
@SETTINGS
def test_pkpo_with_k_equal_n_is_grpo_passk(rewards):
  r = np.array(rewards, np.float32)
  np.testing.assert_allclose(_pkpo(r, len(r)), advantages.grpo_passk(r), atol=1e-6)


# --- exact unbiasedness over a small discrete policy ---------------------------------

LOGITS = jnp.array([0.4, -0.3, 0.2, 0.0])


def _exact_gradient_check(outcome_rewards, num_samples, adv_fn, objective):
  """(E[Σ_i ∇log π(y_i) Â_i] over all outcome^N samples, ∇ objective) for softmax logits."""
  outcomes = len(outcome_rewards)
  samples = np.array(list(itertools.product(range(outcomes), repeat=num_samples)))  # [S, N]

  @jax.jit
  def check(logits):
    pi = jax.nn.softmax(logits)
    probs = jnp.prod(pi[samples], axis=-1)  # [S]
    adv = adv_fn(jnp.asarray(outcome_rewards[samples]))  # [S, N]
    score = jax.nn.one_hot(samples, outcomes) - pi  # ∇_θ log π(y) = e_y − π
    return jnp.einsum("s,sn,sno->o", probs, adv, score), jax.grad(objective)(logits)

  return check(LOGITS)


def _max_at_k_objective(outcome_rewards, k):
  """E[max of k i.i.d. samples] = Σ over k-tuples of P(tuple)·max, as a function of θ."""
  tuples = np.array(list(itertools.product(range(len(outcome_rewards)), repeat=k)))
  best = jnp.asarray(outcome_rewards[tuples].max(-1))
  return lambda logits: jnp.sum(jnp.prod(jax.nn.softmax(logits)[tuples], axis=-1) * best)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("outcome_rewards", [[1.0, 0.0, 0.5, 0.2], [1.0, 0.0, 0.0, 1.0]],
                         ids=["max@k", "pass@k"])
def test_pkpo_is_exactly_unbiased(outcome_rewards, k):
  # Scale constant 1 for every k: E[Σ_i ∇log π(y_i) s_i] = ∇ max@k (binary: ∇ pass@k).
  outcome_rewards = np.array(outcome_rewards, np.float32)
  estimate, grad = _exact_gradient_check(outcome_rewards, 4, lambda r: _pkpo(r, k),
                                         _max_at_k_objective(outcome_rewards, k))
  assert float(jnp.linalg.norm(grad)) > 1e-2
  np.testing.assert_allclose(estimate, grad, atol=1e-6)


@hypothesis.given(reward_groups(values=st.sampled_from([0.0, 1.0])))
@SETTINGS
def test_passk_analytic_is_mean_marginal_pass_advantage_over_std(case):
  rewards, k = case
  n = len(rewards)
  # Brute force: subset passes, their mean / std, and each sample's mean over its subsets.
  subsets = list(itertools.combinations(range(n), k))
  passes = np.array([float(rewards[list(g)].max() > 0) for g in subsets])
  std = passes.std()
  want = np.zeros(n)
  if std > 0:
    for i in range(n):
      want[i] = np.mean([p - passes.mean() for g, p in zip(subsets, passes) if i in g]) / std
  np.testing.assert_allclose(_analytic(rewards, k), want, atol=1e-5)


def test_passk_analytic_is_set_rl_pass_with_mean_reduction():
  rewards = jnp.array([[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0, 0.0, 1.0]])
  passes = set_rl.set_scores("pass", rewards, None, set_rl.all_subsets(6, 3))  # [2, 20]
  marginal = set_rl.set_rl_advantages(rewards, set_fn="pass", set_size=3, reduce="mean")
  np.testing.assert_allclose(_analytic(rewards, 3), marginal / passes.std(-1, keepdims=True),
                             atol=1e-5)


def test_passk_analytic_golden_and_edges():
  # N=4, one correct, k=2: R̄ = 1 − C(3,2)/C(4,2) = 1/2, σ = 1/2; Â_pos = (1/2)/(1/2) = 1;
  # Â_neg = (1 − 1/2 − C(2,1)/C(3,1)) / (1/2) = (1/2 − 2/3)·2 = −1/3.
  np.testing.assert_allclose(_analytic(jnp.array([0.0, 1.0, 0.0, 0.0]), 2),
                             [-1 / 3, 1.0, -1 / 3, -1 / 3], atol=1e-6)
  # k = 1 is GRPO with the population std: (r − p)/sqrt(p(1−p)), p = 1/4.
  np.testing.assert_allclose(_analytic(jnp.array([0.0, 1.0, 0.0, 0.0]), 1),
                             np.array([-0.25, 0.75, -0.25, -0.25]) / np.sqrt(0.1875), atol=1e-6)
  # All equal, or N − c < k (every 3-subset of 4 with 2 correct passes): 0, never NaN.
  for rewards, k in [([0.0] * 4, 2), ([1.0] * 4, 2), ([1.0, 0.0, 1.0, 0.0], 3)]:
    np.testing.assert_array_equal(_analytic(jnp.array(rewards), k), 0.0)


def test_bon_golden_and_direction():
  # N=4, one correct, p = 3/4, n_bon = 4: w+ = 4·(3/4)^3/(1 − (3/4)^4) = 1.6875/0.68359375;
  # w− = 4·(3/4)/(1/4) = 12, clipped to 5.
  adv = _bon(jnp.array([1.0, 0.0, 0.0, 0.0]), n_bon=4, clip=5.0)
  np.testing.assert_allclose(adv, [1.6875 / 0.68359375, -5.0, -5.0, -5.0], rtol=1e-6)
  # All wrong: the clip; all correct: p = 0 so no positive weight for n_bon > 1.
  np.testing.assert_array_equal(
      _bon(jnp.zeros((2, 4)), n_bon=4, clip=3.0), -3.0)
  np.testing.assert_array_equal(
      _bon(jnp.ones(4), n_bon=4, clip=3.0), 0.0)
  # With binary rewards every positive combination of these weights is a positive
  # multiple of ∇ pass@n_bon = −n_bon p^(n_bon−1) ∇p: check the exact expectation.
  outcome_rewards = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
  estimate, grad = _exact_gradient_check(
      outcome_rewards, 4, lambda r: _bon(r, n_bon=4, clip=5.0),
      _max_at_k_objective(outcome_rewards, 4))
  scale = float(estimate @ grad / (grad @ grad))
  assert scale > 0
  np.testing.assert_allclose(estimate, scale * grad, rtol=1e-4, atol=1e-5)


def test_grpo_passk_golden():
  np.testing.assert_allclose(advantages.grpo_passk(jnp.array([0.2, 0.9, 0.5])), [0, 0.4, 0],
                             atol=1e-7)
  # A tie for the maximum: the runner-up equals the best -> all 0.
  np.testing.assert_array_equal(advantages.grpo_passk(jnp.array([0.2, 0.9, 0.5, 0.9])), 0.0)
  with pytest.raises(ValueError, match="at least 2"):
    advantages.grpo_passk(jnp.ones(1))


@pytest.mark.parametrize("name,kwargs", [("pkpo", {"k": 3}), ("pkpo", {"k": 1}),
                                         ("passk_analytic", {"k": 2}),
                                         ("bon", {"n_bon": 4, "clip": 5.0}),
                                         ("grpo_passk", {})])
def test_registered_jit_vmap_and_no_nan(name, kwargs):
  fn = ADVANTAGES.get(name)
  rng = np.random.default_rng(1)
  rewards = rng.integers(0, 2, (4, 6)).astype(np.float32)
  rewards[0] = 0.0  # all zero
  rewards[1] = 1.0  # all equal
  jitted = jax.jit(lambda r: fn(r, **kwargs))
  batched = jitted(rewards)
  # vmap over prompts == the batched call == row by row.
  np.testing.assert_allclose(jax.jit(jax.vmap(lambda r: fn(r, **kwargs)))(rewards), batched,
                             atol=1e-6)
  np.testing.assert_allclose(jitted(rewards[2]), batched[2], atol=1e-6)
  assert batched.dtype == jnp.float32 and np.all(np.isfinite(batched))
  if name != "bon":  # BoN pushes down all-wrong groups by design
    np.testing.assert_array_equal(batched[:2], 0.0)
  np.testing.assert_allclose(jitted(jnp.asarray(rewards, jnp.bfloat16)), batched, atol=1e-6)
