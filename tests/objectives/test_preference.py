"""DPO against hand-computed values; HyPO's LOO-REINFORCE KL gradient is unbiased (exact
expectation by enumerating every k-tuple of sequences of a tiny autoregressive policy)."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives.preference import dpo_loss, dpo_metrics, hypo_kl_surrogate, hypo_loss


def test_dpo_against_hand_computed_values():
  pc = jnp.array([-5.0, -2.0, -30.0])
  pr = jnp.array([-6.0, -1.0, -10.0])
  rc = jnp.array([-5.5, -2.0, -31.0])
  rr = jnp.array([-5.5, -2.0, -9.0])
  # margins (pc − rc) − (pr − rr): 0.5 − (−0.5) = 1;  0 − 1 = −1;  1 − (−1) = 2
  beta = 0.1
  want = [-math.log(1 / (1 + math.exp(-beta * z))) for z in (1.0, -1.0, 2.0)]
  np.testing.assert_allclose(dpo_loss(pc, pr, rc, rr, beta=beta), want, rtol=1e-6)
  assert dpo_loss(pc, pr, rc, rr, beta=beta).shape == (3,)
  m = dpo_metrics(pc, pr, rc, rr, beta=beta)
  np.testing.assert_allclose(m["rewards_chosen"], beta * np.mean([0.5, 0.0, 1.0]), rtol=1e-6)
  np.testing.assert_allclose(m["rewards_rejected"], beta * np.mean([-0.5, 1.0, -1.0]), rtol=1e-6)
  np.testing.assert_allclose(m["reward_margin"], beta * np.mean([1.0, -1.0, 2.0]), rtol=1e-6)
  np.testing.assert_allclose(m["reward_accuracy"], 2 / 3, rtol=1e-6)
  np.testing.assert_allclose(m["dpo_loss"], np.mean(want), rtol=1e-6)


def test_dpo_is_stable_for_large_margins_and_its_gradient_is_hand_computed():
  big = dpo_loss(jnp.array([0.0]), jnp.array([-1e4]), jnp.array([0.0]), jnp.array([0.0]),
                 beta=1.0)
  assert np.isfinite(big).all() and float(big[0]) == pytest.approx(0.0, abs=1e-6)
  bad = dpo_loss(jnp.array([-1e4]), jnp.array([0.0]), jnp.array([0.0]), jnp.array([0.0]),
                 beta=1.0)
  assert float(bad[0]) == pytest.approx(1e4, rel=1e-6)
  # ∂ℓ/∂π_c = −β·σ(−βz), z the margin
  g = jax.grad(lambda x: dpo_loss(x, jnp.array([-1.0]), jnp.array([0.0]), jnp.array([0.0]),
                                  beta=0.5).sum())(jnp.array([-2.0]))
  z = -2.0 - (-1.0)
  np.testing.assert_allclose(g, [-0.5 / (1 + math.exp(0.5 * z))], rtol=1e-6)


def test_dpo_rejects_mismatched_shapes():
  with pytest.raises(AssertionError, match="ref_rejected_logps must have the shape of "
                                           "policy_chosen_logps"):
    dpo_loss(jnp.zeros(3), jnp.zeros(3), jnp.zeros(3), jnp.zeros(2), beta=0.1)


# --- HyPO: an enumerable toy policy --------------------------------------------------------
# Sequences of L = 2 tokens over a vocabulary of 3: 9 sequences. π(y1 y2) = π1(y1)·π2(y2|y1)
# with logits θ1 [3] and θ2 [3, 3]; the reference has fixed logits of the same form.

VOCAB, SEQS = 3, list(itertools.product(range(3), repeat=2))


def _seq_logps(params):
  """Sequence log-probs [9] of the toy autoregressive policy (sum of token log-probs)."""
  l1 = jax.nn.log_softmax(params["t1"])
  l2 = jax.nn.log_softmax(params["t2"], axis=-1)
  return jnp.array([l1[a] + l2[a, b] for a, b in SEQS])


def _toy(seed):
  k1, k2, k3, k4 = jax.random.split(jax.random.key(seed), 4)
  policy = {"t1": jax.random.normal(k1, (VOCAB,)), "t2": 1.5 * jax.random.normal(k2, (3, 3))}
  ref = {"t1": jax.random.normal(k3, (VOCAB,)), "t2": jax.random.normal(k4, (3, 3))}
  return policy, ref


def _exact_kl(params, ref):
  logp, logq = _seq_logps(params), _seq_logps(ref)
  return jnp.sum(jnp.exp(logp) * (logp - logq))


@pytest.mark.parametrize("k", [2, 3])
def test_hypo_kl_gradient_is_unbiased_by_enumeration(k):
  policy, ref = _toy(0)
  ref_logps = jax.lax.stop_gradient(_seq_logps(ref))
  tuples = jnp.array(list(itertools.product(range(len(SEQS)), repeat=k)))  # [9^k, k]

  def surrogate(params, idx):
    logp = _seq_logps(params)
    return hypo_kl_surrogate(logp[idx][None], ref_logps[idx][None])[0]

  values = jax.vmap(surrogate, in_axes=(None, 0))(policy, tuples)           # [9^k]
  grads = jax.vmap(jax.grad(surrogate), in_axes=(None, 0))(policy, tuples)
  prob = jnp.exp(_seq_logps(policy))[tuples].prod(axis=1)                   # P(tuple)
  np.testing.assert_allclose(prob.sum(), 1.0, rtol=1e-5)
  expected_grad = jax.tree.map(lambda g: jnp.tensordot(prob, g, axes=1), grads)
  exact_grad = jax.grad(_exact_kl)(policy, ref)
  for name in ("t1", "t2"):
    np.testing.assert_allclose(expected_grad[name], exact_grad[name], atol=2e-5)
    assert np.abs(np.asarray(exact_grad[name])).max() > 0.05
  # the value is an unbiased estimate of the KL
  np.testing.assert_allclose(jnp.dot(prob, values), _exact_kl(policy, ref), rtol=1e-5)
  # differentiating the plain estimate mean_j r_j instead is biased (its expectation is 0 here)
  naive = jax.vmap(jax.grad(lambda p, idx: jnp.mean(_seq_logps(p)[idx] - ref_logps[idx])),
                   in_axes=(None, 0))(policy, tuples)
  naive_mean = jax.tree.map(lambda g: jnp.tensordot(prob, g, axes=1), naive)
  assert np.abs(np.asarray(naive_mean["t2"] - exact_grad["t2"])).max() > 0.05


def test_hypo_kl_surrogate_value_and_shape_checks():
  logp = jnp.array([[-1.0, -2.0, -3.0], [-0.5, -0.5, -4.0]])
  ref = jnp.array([[-1.5, -1.0, -3.0], [-1.0, -0.25, -2.0]])
  np.testing.assert_allclose(hypo_kl_surrogate(logp, ref), (logp - ref).mean(1), rtol=1e-6)
  # gradient of sample j: (r_j − mean_{i≠j} r_i)/k
  g = jax.grad(lambda x: hypo_kl_surrogate(x, ref).sum())(logp)
  r = np.asarray(logp - ref)
  loo = (r.sum(1, keepdims=True) - r) / 2
  np.testing.assert_allclose(g, (r - loo) / 3, rtol=1e-6)
  with pytest.raises(ValueError, match="k >= 2"):
    hypo_kl_surrogate(logp[:, :1], ref[:, :1])


def test_hypo_loss_combines_dpo_and_the_kl_term():
  pc, pr = jnp.array([-2.0, -3.0]), jnp.array([-4.0, -1.0])
  rc, rr = jnp.array([-2.5, -3.0]), jnp.array([-3.0, -2.0])
  samples = jnp.array([[-1.0, -2.0, -3.0]])
  ref_samples = jnp.array([[-1.5, -1.0, -3.0]])
  loss, metrics = hypo_loss(pc, pr, rc, rr, samples, ref_samples, beta=0.2, kl_coef=0.5)
  want = jnp.mean(dpo_loss(pc, pr, rc, rr, beta=0.2)) + 0.5 * jnp.mean(samples - ref_samples)
  np.testing.assert_allclose(loss, want, rtol=1e-6)
  np.testing.assert_allclose(metrics["kl_ref"], jnp.mean(samples - ref_samples), rtol=1e-6)
  assert {"reward_margin", "reward_accuracy", "hypo_loss"} <= set(metrics)
  g = jax.grad(lambda s: hypo_loss(pc, pr, rc, rr, s, ref_samples, beta=0.2, kl_coef=0.5)[0])(
      samples)
  np.testing.assert_allclose(g, 0.5 * jax.grad(lambda s: hypo_kl_surrogate(s, ref_samples)[0])(
      samples), rtol=1e-6)
