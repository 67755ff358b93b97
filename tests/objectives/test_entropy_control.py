"""Covariance, Clip-Cov and KL-Cov: golden values, selection rules, gradients."""
import fractions
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import aggregation, entropy_control, policy_loss
from explore_rl.objectives.catalog import POLICY_LOSSES

WIDE = dict(cov_lb=-1e9, cov_ub=1e9)  # every unclipped valid token is eligible


def _token_mean(loss, mask):
  return aggregation.finalize(*aggregation.token_mean(loss, mask))


def _expected_count(ratio, n, cap):
  """min(max(⌊ratio·n⌋, 1), cap) with exact rational arithmetic."""
  return min(max(math.floor(fractions.Fraction(str(ratio)) * n), 1), cap)


def _random_batch(seed, b=4, t=6, keep=0.8):
  rng = np.random.default_rng(seed)
  old = rng.normal(size=(b, t)).astype(np.float32) - 1.0
  logp = old + rng.normal(size=(b, t)).astype(np.float32) * 0.3
  adv = rng.normal(size=(b, t)).astype(np.float32)
  mask = (rng.uniform(size=(b, t)) < keep).astype(np.float32)
  mask[0, 0] = 1.0
  return logp, old, adv, mask


# Hyper-parameters are traced, not static: one compilation serves every value.
_clip_cov = jax.jit(entropy_control.clip_cov_loss)
_kl_cov = jax.jit(entropy_control.kl_cov_loss)
_token_covariance = jax.jit(entropy_control.token_covariance)


def test_token_covariance_golden():
  logp = np.array([[-1.0, -2.0], [-3.0, np.nan]], np.float32)
  adv = np.array([1.0, -1.0], np.float32)  # per sequence: tokens get [1, 1, -1]
  mask = np.array([[1, 1], [1, 0]], np.float32)
  # mean logp = (−1 − 2 − 3)/3 = −2, mean A = (1 + 1 − 1)/3 = 1/3:
  # (1)(2/3) = 2/3, (0)(2/3) = 0, (−1)(−4/3) = 4/3, padding 0.
  cov = entropy_control.token_covariance(logp, adv, mask)
  np.testing.assert_allclose(cov, [[2 / 3, 0.0], [4 / 3, 0.0]], rtol=1e-6)
  grad = jax.grad(lambda lp: jnp.sum(entropy_control.token_covariance(lp, adv, mask)))(logp)
  np.testing.assert_array_equal(grad, 0.0)  # detached


def test_covariance_stats_golden():
  cov = np.array([[4.0, 1.0, 3.0], [-2.0, 0.0, 99.0]], np.float32)
  mask = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
  stats = entropy_control.covariance_stats(cov, mask, top_fractions=(0.2, 0.5, 1e-9))
  np.testing.assert_allclose(stats["cov_mean"], 1.2)  # (4 + 1 + 3 − 2 + 0)/5
  np.testing.assert_allclose(stats["cov_top0.2_mean"], 4.0)  # ⌊0.2·5⌋ = 1 -> 4
  np.testing.assert_allclose(stats["cov_top0.5_mean"], 3.5)  # ⌊2.5⌋ = 2 -> (4 + 3)/2
  np.testing.assert_allclose(stats["cov_top1e-09_mean"], 4.0)  # at least one token
  empty = entropy_control.covariance_stats(cov, np.zeros_like(mask))
  assert all(float(v) == 0.0 for v in empty.values())


def test_selection_count():
  # 2e-4 is inexact in fp32 (1.9999999e-4); the count must still be ⌊10000·2e-4⌋ = 2.
  assert float(entropy_control.selection_count(2e-4, jnp.float32(10000))) == 2.0
  assert float(entropy_control.selection_count(0.29, jnp.float32(100))) == 29.0
  assert float(entropy_control.selection_count(2e-4, jnp.float32(4999))) == 1.0  # max(0, 1)
  assert float(entropy_control.selection_count(2e-4, jnp.float32(0))) == 1.0


def test_clip_cov_golden():
  # logp = [−1, −1, −3, −3]: centred [1, 1, −1, −1]. A = [2, 6, −2, 2]: centred [0, 4, −4, 0].
  # Cov = [0, 4, 4, 0]: tokens 1 and 2 lie in (1, 5).
  # Token 2 has ρ = 0.5 (old = −3 − ln 0.5): pg1 = 2·0.5 = 1 < pg2 = 2·0.8 = 1.6, already
  # clipped, so it is not eligible. Token 1 is the only eligible token; count =
  # min(max(⌊2e-4·4⌋, 1), 1) = 1 -> it is selected and its loss zeroed.
  logp = np.array([[-1.0, -1.0, -3.0, -3.0]], np.float32)
  old = logp.copy()
  old[0, 2] = -3.0 - np.log(0.5)
  adv = np.array([[2.0, 6.0, -2.0, 2.0]], np.float32)
  mask = np.ones((1, 4), np.float32)
  loss, aux = entropy_control.clip_cov_loss(logp, old, adv, mask, rng=jax.random.key(0))
  np.testing.assert_array_equal(aux["selected"], [[False, True, False, False]])
  # Others keep PPO-clip: −2·1, 1.6 (clipped), −2·1.
  np.testing.assert_allclose(loss, [[-2.0, 0.0, 1.6, -2.0]], rtol=1e-6)
  np.testing.assert_allclose(aux["selected_frac"], 0.25)
  np.testing.assert_allclose(aux["clip_frac"], 0.25)
  np.testing.assert_allclose(aux["cov_mean"], 2.0)  # (0 + 4 + 4 + 0)/4


def test_kl_cov_golden():
  # Same tokens; Cov = [0, 4, 4, 0], N = 4, ratio 0.5 -> top ⌊2⌋ = tokens 1 and 2.
  # Token 2: −Âρ = 2·0.5 = 1, plus 1·|ln 0.5| = 0.693147 -> 1.693147. No PPO clip anywhere.
  logp = np.array([[-1.0, -1.0, -3.0, -3.0]], np.float32)
  old = logp.copy()
  old[0, 2] = -3.0 - np.log(0.5)
  adv = np.array([[2.0, 6.0, -2.0, 2.0]], np.float32)
  mask = np.ones((1, 4), np.float32)
  loss, aux = entropy_control.kl_cov_loss(logp, old, adv, mask, ratio=0.5, kl_coef=1.0)
  np.testing.assert_array_equal(aux["selected"], [[False, True, True, False]])
  np.testing.assert_allclose(loss, [[-2.0, -6.0, 1.693147, -2.0]], rtol=1e-6)
  np.testing.assert_allclose(aux["kl_abs"], 0.693147 / 4, rtol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_clip_cov_gradient_zero_on_selected_ppo_elsewhere(seed):
  logp, old, adv, mask = _random_batch(seed)
  key = jax.random.key(seed)
  hp = dict(ratio=0.3, clip_eps_low=0.2, clip_eps_high=0.25, **WIDE)
  selected = np.asarray(_clip_cov(logp, old, adv, mask, rng=key, **hp)[1]["selected"])
  assert 0 < selected.sum() < mask.sum()
  grad = jax.grad(lambda lp: _token_mean(_clip_cov(lp, old, adv, mask, rng=key, **hp)[0],
                                         mask))(logp)
  ppo_grad = jax.grad(lambda lp: _token_mean(policy_loss.ppo_loss(
      lp, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.25, dual_clip_c=None)[0], mask))(logp)
  np.testing.assert_array_equal(np.asarray(grad)[selected], 0.0)
  np.testing.assert_allclose(np.asarray(grad)[~selected], np.asarray(ppo_grad)[~selected],
                             rtol=1e-6, atol=1e-8)
  assert np.any(np.asarray(ppo_grad)[selected] != 0)  # the zeros are the method's doing


@pytest.mark.parametrize("seed", range(3))
def test_kl_cov_gradient_is_pg_plus_sign_penalty_on_selected(seed):
  logp, old, adv, mask = _random_batch(seed)
  coef = 0.7
  selected = np.asarray(_kl_cov(logp, old, adv, mask, ratio=0.2, kl_coef=coef)[1]["selected"])
  assert selected.sum() == _expected_count(0.2, int(mask.sum()), int(mask.sum()))
  grad = jax.grad(lambda lp: _token_mean(_kl_cov(lp, old, adv, mask, ratio=0.2,
                                                 kl_coef=coef)[0], mask))(logp)
  pg_grad = jax.grad(lambda lp: _token_mean(policy_loss.pg_loss(lp, old, adv, mask)[0],
                                            mask))(logp)
  # token-mean divides every token's gradient by N_valid; ∂|x|/∂x = sign(x).
  want = np.asarray(pg_grad) + selected * coef * np.sign(logp - old) / mask.sum()
  np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)
  # And the no-clip PG gradient itself is −Â·ρ / N on valid tokens.
  np.testing.assert_allclose(pg_grad, -adv * np.exp(logp - old) * mask / mask.sum(),
                             rtol=1e-5, atol=1e-7)


def test_nothing_selected_reduces_to_base_losses():
  logp, old, adv, mask = _random_batch(7)
  key = jax.random.key(0)
  # An empty covariance window leaves no token eligible: plain PPO-clip (no dual clip).
  loss, aux = entropy_control.clip_cov_loss(logp, old, adv, mask, rng=key, cov_lb=1e8,
                                            cov_ub=1e9, clip_eps_low=0.2, clip_eps_high=0.28)
  base, _ = policy_loss.ppo_loss(logp, old, adv, mask, clip_eps_low=0.2, clip_eps_high=0.28,
                                 dual_clip_c=None)
  assert not np.any(aux["selected"])
  np.testing.assert_array_equal(loss, base)
  # KL-Cov always picks ≥ 1 token; with a zero coefficient, or on-policy (|logp − old| = 0),
  # the penalty vanishes and the loss is the no-clip PG loss.
  pg, _ = policy_loss.pg_loss(logp, old, adv, mask)
  np.testing.assert_array_equal(entropy_control.kl_cov_loss(logp, old, adv, mask,
                                                            kl_coef=0.0)[0], pg)
  on_policy, aux = entropy_control.kl_cov_loss(old, old, adv, mask, ratio=0.5)
  assert np.any(aux["selected"])
  np.testing.assert_array_equal(on_policy, policy_loss.pg_loss(old, old, adv, mask)[0])


def _eligible(logp, old, adv, mask, cov, lb, ub, eps_low, eps_high):
  rho = np.exp(logp - old)
  pg1, pg2 = -adv * rho, -adv * np.clip(rho, 1 - eps_low, 1 + eps_high)
  return (mask > 0) & ~(pg2 > pg1) & (cov > lb) & (cov < ub)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), ratio=st.sampled_from([1e-3, 0.1, 0.25, 0.5]),
                  lb=st.sampled_from([-1.0, -0.05, 0.0, 0.1]))
def test_clip_cov_selection_rule(seed, ratio, lb):
  logp, old, adv, mask = _random_batch(seed, keep=0.7)
  hp = dict(ratio=ratio, cov_lb=lb, cov_ub=0.5, clip_eps_low=0.1, clip_eps_high=0.1)
  key = jax.random.key(seed)
  _, aux = _clip_cov(logp, old, adv, mask, rng=key, **hp)
  selected = np.asarray(aux["selected"])
  cov = np.asarray(_token_covariance(logp, adv, mask))
  eligible = _eligible(logp, old, adv, mask, cov, lb, 0.5, 0.1, 0.1)
  assert not np.any(selected & ~eligible)
  assert selected.sum() == _expected_count(ratio, int(mask.sum()), int(eligible.sum()))
  # Same key, same subset.
  np.testing.assert_array_equal(_clip_cov(logp, old, adv, mask, rng=key, **hp)[1]["selected"],
                                selected)


def test_clip_cov_is_random_per_key_and_uniform():
  logp, old, adv, mask = _random_batch(11, b=2, t=6, keep=1.0)
  hp = dict(ratio=0.1, clip_eps_low=10.0, clip_eps_high=10.0, **WIDE)  # all 12 eligible
  keys = jax.random.split(jax.random.key(0), 2000)
  selected = jax.jit(jax.vmap(
      lambda k: entropy_control.clip_cov_loss(logp, old, adv, mask, rng=k, **hp)[1]["selected"]
  ))(keys)
  selected = np.asarray(selected).reshape(2000, -1)
  assert np.all(selected.sum(-1) == 1)  # ⌊0.1·12⌋ = 1 token per key
  assert len({tuple(row) for row in selected[:20]}) > 1  # different keys, different picks
  # Each of the 12 tokens is picked with probability 1/12: 166.7 ± 3 s.d. (≈ 37).
  counts = selected.sum(0)
  assert np.all(np.abs(counts - 2000 / 12) < 40), counts


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(seed=st.integers(0, 2**31 - 1), ratio=st.sampled_from([1e-3, 0.1, 0.3, 0.9]))
def test_kl_cov_selects_exactly_top_k(seed, ratio):
  logp, old, adv, mask = _random_batch(seed, keep=0.6)
  _, aux = _kl_cov(logp, old, adv, mask, ratio=ratio, kl_coef=1.0)
  selected = np.asarray(aux["selected"])
  n = int(mask.sum())
  k = _expected_count(ratio, n, n)
  cov = np.asarray(_token_covariance(logp, adv, mask))
  valid_cov = np.sort(cov[mask > 0])[::-1]
  # Brute force: the selected set is the k largest valid covariances.
  assert selected.sum() == k and not np.any(selected & (mask == 0))
  np.testing.assert_array_equal(np.sort(cov[selected])[::-1], valid_cov[:k])


def test_jit_vmap_bf16_and_empty_mask():
  logp, old, adv, mask = _random_batch(5)
  key = jax.random.key(1)
  bf = lambda x: jnp.asarray(x, jnp.bfloat16)
  for fn in (lambda *a: _clip_cov(*a, rng=key, **WIDE), lambda *a: _kl_cov(*a, ratio=0.2)):
    loss, aux = fn(logp, old, adv, mask)
    vloss, vaux = jax.vmap(fn)(*(np.stack([x, x]) for x in (logp, old, adv, mask)))
    np.testing.assert_allclose(vloss[0], loss, rtol=1e-6)
    np.testing.assert_array_equal(vaux["selected"][1], aux["selected"])
    loss16, aux16 = fn(bf(logp), bf(old), bf(adv), mask.astype(bool))
    assert loss16.dtype == jnp.float32 and aux16["selected"].dtype == jnp.bool_
    assert all(v.dtype == jnp.float32 for k, v in aux16.items() if k != "selected")
    loss0, aux0 = fn(logp, old, adv, np.zeros_like(mask))
    np.testing.assert_array_equal(loss0, 0.0)
    assert not np.any(aux0["selected"])
    assert all(float(v) == 0.0 for k, v in aux0.items() if k != "selected")


def test_registry_adapters():
  logp, old, adv, mask = _random_batch(3)
  with pytest.raises(ValueError, match="rng"):
    POLICY_LOSSES.get("clip_cov")(logp, old, adv, mask)
  key = jax.random.key(2)
  loss, metrics = POLICY_LOSSES.get("clip_cov")(logp, old, adv, mask, rng=key, ratio=0.3)
  want, aux = entropy_control.clip_cov_loss(logp, old, adv, mask, rng=key, ratio=0.3)
  np.testing.assert_array_equal(loss, want)
  np.testing.assert_array_equal(metrics["selected"], aux["selected"])
  assert float(metrics["selected_frac"]) == aux["selected_frac"]
  loss, metrics = POLICY_LOSSES.get("kl_cov")(logp, old, adv, mask, rng=key, kl_coef=0.5)
  np.testing.assert_array_equal(loss, entropy_control.kl_cov_loss(logp, old, adv, mask,
                                                                  kl_coef=0.5)[0])
  # Given `selected` (chosen over a larger batch), both act on exactly those tokens.
  chosen = np.zeros(mask.shape, bool)
  chosen[0, 0] = True
  for name in ("clip_cov", "kl_cov"):
    _, metrics = POLICY_LOSSES.get(name)(logp, old, adv, mask, selected=chosen)
    np.testing.assert_array_equal(metrics["selected"], chosen & (mask > 0))


_both_with_grads = jax.jit(lambda lp, old, adv, mask, key: (
    jax.value_and_grad(lambda x: _token_mean(entropy_control.clip_cov_loss(
        x, old, adv, mask, rng=key, ratio=0.2, cov_lb=-1.0)[0], mask))(lp),
    jax.value_and_grad(lambda x: _token_mean(entropy_control.kl_cov_loss(
        x, old, adv, mask, ratio=0.2)[0], mask))(lp),
    entropy_control.clip_cov_loss(lp, old, adv, mask, rng=key)[1],
    entropy_control.kl_cov_loss(lp, old, adv, mask)[1]))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(shape=st.sampled_from([(1, 1), (1, 4), (3, 5)]), seed=st.integers(0, 2**31 - 1))
def test_property_finite(shape, seed):
  # A few shapes (each one compiles four losses and gradients), random masks and values.
  b, t = shape
  rng = np.random.default_rng(seed)
  old = (rng.normal(size=(b, t)) * 20).astype(np.float32)
  logp = (rng.normal(size=(b, t)) * 20).astype(np.float32)
  adv = (rng.normal(size=(b,)) * 5).astype(np.float32)
  mask = (rng.uniform(size=(b, t)) < rng.uniform()).astype(np.float32)
  logp[mask == 0] = np.nan
  (v1, g1), (v2, g2), aux1, aux2 = _both_with_grads(logp, old, adv, mask, jax.random.key(seed))
  for x in (v1, g1, v2, g2, *aux1.values(), *aux2.values()):
    assert np.all(np.isfinite(np.asarray(x, np.float32)))
