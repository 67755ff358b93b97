"""Gibbs policy / reward-weighted regression (explore_rl/objectives/advantages/gibbs.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives.advantages.gibbs import gibbs_rwr
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.policy_loss import pg_loss

REWARDS = jnp.asarray([[0.0, 1.0, 0.5, 1.0], [0.2, 0.2, 0.9, 0.1]])


def test_lambda_to_zero_is_behaviour_cloning_of_the_group():
  for lam in (0.0, 1e-8):
    w = gibbs_rwr(REWARDS, lam=lam)
    np.testing.assert_allclose(w, np.ones((2, 4)), rtol=1e-6)


def test_lambda_to_infinity_clones_the_best_samples():
  w = np.asarray(gibbs_rwr(REWARDS, lam=1e4))
  # group 0: two best samples (r = 1) share the mass n = 4; group 1: one best sample
  np.testing.assert_allclose(w[0], [0, 2, 0, 2], atol=1e-6)
  np.testing.assert_allclose(w[1], [0, 0, 4, 0], atol=1e-6)
  assert np.isfinite(w).all()


def test_weights_are_exp_lambda_r_over_the_group_mean():
  lam = 2.0
  w = np.asarray(gibbs_rwr(REWARDS, lam=lam))
  e = np.exp(lam * np.asarray(REWARDS))
  np.testing.assert_allclose(w, e / e.mean(axis=1, keepdims=True), rtol=1e-5)
  np.testing.assert_allclose(w.mean(axis=1), [1.0, 1.0], rtol=1e-5)


def test_clipping_and_masked_samples():
  mask = jnp.asarray([[True, True, True, False], [True, True, False, False]])
  w = np.asarray(gibbs_rwr(REWARDS, mask, lam=3.0))
  assert w[0, 3] == 0 and (w[1, 2:] == 0).all()
  e = np.exp(3.0 * np.asarray([0.0, 1.0, 0.5]))
  np.testing.assert_allclose(w[0, :3], e / e.mean(), rtol=1e-5)
  np.testing.assert_allclose(w[1, :2], [1.0, 1.0], rtol=1e-5)
  clipped = np.asarray(gibbs_rwr(REWARDS, lam=1e4, max_weight=1.5, min_weight=0.1))
  np.testing.assert_allclose(clipped[0], [0.1, 1.5, 0.1, 1.5], atol=1e-6)
  assert (np.asarray(gibbs_rwr(REWARDS, jnp.zeros((2, 4), bool), lam=1.0)) == 0).all()
  with pytest.raises(ValueError):
    gibbs_rwr(REWARDS, lam=-1.0)


def test_weighted_empirical_distribution_tends_to_the_gibbs_policy():
  """(1/N) Σ w_i δ_{y_i} with y_i ∼ π_ref tends to π* ∝ π_ref·exp(λ r)."""
  rng = np.random.default_rng(0)
  p_ref = np.asarray([0.5, 0.3, 0.15, 0.05])
  r = np.asarray([0.0, 0.3, 1.0, 0.6])
  lam = 2.0
  y = rng.choice(4, size=200_000, p=p_ref)
  w = np.asarray(gibbs_rwr(jnp.asarray(r[y])[None], lam=lam))[0]
  empirical = np.bincount(y, weights=w, minlength=4) / len(y)
  target = p_ref * np.exp(lam * r) / (p_ref * np.exp(lam * r)).sum()
  np.testing.assert_allclose(empirical, target, atol=0.01)


def test_pg_loss_gradient_is_the_analytic_weighted_likelihood_gradient():
  """Toy categorical policy π_θ = softmax(θ) over V actions, N one-token samples: the `pg`
  loss with Â = w and seq-mean-token-sum aggregation has gradient
  −(1/N) Σ_i w_i (e_{y_i} − π_θ), the gradient of −(1/N) Σ_i w_i log π_θ(y_i)."""
  v, lam = 5, 1.5
  theta = jnp.asarray([0.3, -0.2, 0.5, 0.0, -1.0])
  y = jnp.asarray([0, 2, 2, 4, 1, 3])
  r = jnp.asarray([0.0, 1.0, 1.0, 0.2, 0.5, 0.0])
  w = gibbs_rwr(r[None], lam=lam)[0]

  def loss(th):
    logp = jax.nn.log_softmax(th)[y][:, None]                  # [N, 1]: one token each
    per_token, _ = pg_loss(logp, jax.lax.stop_gradient(logp), w, jnp.ones_like(logp, bool))
    num, den = aggregate(per_token, jnp.ones_like(logp, bool), mode="seq-mean-token-sum")
    return num / den

  grad = jax.grad(loss)(theta)
  pi = jax.nn.softmax(theta)
  onehot = jax.nn.one_hot(y, v)
  analytic = -(w[:, None] * (onehot - pi[None])).sum(0) / len(y)
  np.testing.assert_allclose(grad, analytic, rtol=1e-5, atol=1e-7)
  # and the same as differentiating the weighted negative log-likelihood directly
  nll = lambda th: -(w * jax.nn.log_softmax(th)[y]).mean()
  np.testing.assert_allclose(grad, jax.grad(nll)(theta), rtol=1e-5, atol=1e-7)
