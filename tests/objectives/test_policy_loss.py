"""PPO / GSPO / PG policy losses, KL-to-reference and entropy terms."""
import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from explore_rl.objectives import aggregation, entropy_control, policy_loss  # noqa: F401
from explore_rl.objectives.catalog import POLICY_LOSSES

LN = np.log
# Row 0 has Â = +1, row 1 has Â = −1; ratios ρ = [[1.5, 0.5], [0.5, 4.0]].
OLD = np.array([[-1.0, -2.0], [-0.5, -3.0]], np.float32)
LOGP = OLD + LN(np.array([[1.5, 0.5], [0.5, 4.0]], np.float32))
ADV = np.array([1.0, -1.0], np.float32)
MASK = np.ones((2, 2), np.float32)


def _token_mean(loss, mask):
  return aggregation.finalize(*aggregation.token_mean(loss, mask))


def test_ppo_golden():
  loss, m = policy_loss.ppo_loss(LOGP, OLD, ADV, MASK, clip_eps_low=0.2, clip_eps_high=0.2,
                                 dual_clip_c=3.0)
  # Â=+1, ρ=1.5: max(−1.5, −1.2) = −1.2 (clipped);  ρ=0.5: max(−0.5, −0.8) = −0.5.
  # Â=−1, ρ=0.5: max(0.5, 0.8) = 0.8 (clipped);     ρ=4: max(4, 1.2) = 4 -> dual clip min(4, 3) = 3.
  np.testing.assert_allclose(loss, [[-1.2, -0.5], [0.8, 3.0]], rtol=1e-6)
  np.testing.assert_allclose(m["clip_frac"], 0.5)  # 2 of 4 tokens have pg2 > pg1
  np.testing.assert_allclose(m["clip_frac_lower"], 0.25)
  np.testing.assert_allclose(m["ratio_mean"], 1.625, rtol=1e-6)  # (1.5 + .5 + .5 + 4)/4
  np.testing.assert_allclose(m["ratio_max"], 4.0, rtol=1e-6)
  # k3: ρ − 1 − ln ρ = 0.094535, 0.193147, 0.193147, 1.613706 -> mean 0.523634.
  np.testing.assert_allclose(m["approx_kl"], 0.523634, rtol=1e-5)


def test_ppo_clip_higher_and_no_dual_clip():
  loss, m = policy_loss.ppo_loss(LOGP, OLD, ADV, MASK, clip_eps_low=0.2, clip_eps_high=0.28,
                                 dual_clip_c=None)
  # ρ=1.5 is now clipped at 1.28; without dual clip the ρ=4 token keeps loss 4.
  np.testing.assert_allclose(loss, [[-1.28, -0.5], [0.8, 4.0]], rtol=1e-6)
  assert "clip_frac_lower" not in m
  with pytest.raises(ValueError, match="dual_clip_c"):
    policy_loss.ppo_loss(LOGP, OLD, ADV, MASK, dual_clip_c=0.5)


def test_ppo_gradient_golden():
  grad = jax.grad(lambda lp: jnp.sum(policy_loss.ppo_loss(lp, OLD, ADV, MASK)[0]))(LOGP)
  # Unclipped tokens: d(−Âρ)/dlogp = −Âρ; clipped and dual-clipped ones: 0.
  np.testing.assert_allclose(grad, [[0.0, -0.5], [0.0, 0.0]], rtol=1e-6)


def test_check_grads_ppo():
  rng = np.random.default_rng(0)
  old = rng.normal(size=(3, 4)).astype(np.float32)
  # Ratios in [0.85, 1.15]: inside the clip range except near no kink, so FD is valid.
  logp = old + rng.uniform(-0.15, 0.15, size=(3, 4)).astype(np.float32)
  adv = rng.normal(size=(3,)).astype(np.float32)
  mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], np.float32)
  f = lambda lp: _token_mean(policy_loss.ppo_loss(lp, old, adv, mask, clip_eps_low=0.3,
                                                  clip_eps_high=0.3)[0], mask)
  check_grads(f, (logp,), order=2, modes=("rev",), eps=1e-2, atol=1e-3, rtol=1e-3)
  g = lambda lp: _token_mean(policy_loss.ppo_loss(lp, old, adv, mask, clip_eps_low=0.05,
                                                  clip_eps_high=0.05, ratio_level="sequence")[0],
                             mask)
  check_grads(g, (logp,), order=1, modes=("rev",), eps=1e-3, atol=1e-3, rtol=1e-3)


def test_gspo_sequence_ratio():
  # Row 0: log ratios [ln 2, 0] -> s = exp(ln 2 / 2) = 1.414214 for every token.
  # Row 1: only the first token is valid, log ratio ln 0.5 -> s = 0.5.
  old = np.zeros((2, 2), np.float32)
  logp = np.array([[LN(2.0), 0.0], [LN(0.5), 7.0]], np.float32)
  mask = np.array([[1, 1], [1, 0]], np.float32)
  adv = np.array([1.0, 1.0], np.float32)
  wide = dict(clip_eps_low=0.9, clip_eps_high=0.9, dual_clip_c=None)
  loss, m = policy_loss.ppo_loss(logp, old, adv, mask, ratio_level="sequence", **wide)
  np.testing.assert_allclose(loss, [[-1.414214, -1.414214], [-0.5, 0.0]], rtol=1e-6)
  np.testing.assert_allclose(m["ratio_max"], 1.414214, rtol=1e-6)
  # Token form: ∂ℓ_t/∂logp_t = −Â·s_i, no cross-token terms.
  grad = jax.grad(lambda lp: jnp.sum(policy_loss.ppo_loss(lp, old, adv, mask,
                                                          ratio_level="sequence", **wide)[0]))(logp)
  np.testing.assert_allclose(grad, [[-1.414214, -1.414214], [-0.5, 0.0]], rtol=1e-6)
  # GSPO's own clip range (3e-4 / 4e-4): s = 1.414 is clipped to 1.0004 and 0.5 stays.
  loss, m = POLICY_LOSSES.get("gspo")(logp, old, adv, mask)
  np.testing.assert_allclose(loss, [[-1.0004, -1.0004], [-0.5, 0.0]], rtol=1e-6)
  assert "clip_frac_lower" not in m  # no dual clip in GSPO
  with pytest.raises(ValueError, match="ratio_level"):
    policy_loss.ppo_loss(logp, old, adv, mask, ratio_level="sentence")


def test_pg_golden_and_gradient():
  loss, m = policy_loss.pg_loss(LOGP, OLD, ADV, MASK)
  # −Âρ: [[−1.5, −0.5], [0.5, 4]]; the gradient equals the loss (d exp = exp).
  np.testing.assert_allclose(loss, [[-1.5, -0.5], [0.5, 4.0]], rtol=1e-6)
  grad = jax.grad(lambda lp: jnp.sum(policy_loss.pg_loss(lp, OLD, ADV, MASK)[0]))(LOGP)
  np.testing.assert_allclose(grad, loss, rtol=1e-6)
  assert set(m) == {"approx_kl", "ratio_mean", "ratio_max"}


def test_kl_estimators_golden():
  logp = np.array([[0.5, -1.0, 100.0, -100.0]], np.float32)
  ref = np.zeros_like(logp)
  mask = np.ones_like(logp)
  k1, _ = policy_loss.kl_penalty(logp, ref, mask, coef=1.0, estimator="k1")
  k2, _ = policy_loss.kl_penalty(logp, ref, mask, coef=1.0, estimator="k2")
  k3, m3 = policy_loss.kl_penalty(logp, ref, mask, coef=2.0, estimator="k3")
  np.testing.assert_allclose(k1, [[0.5, -1.0, 100.0, -100.0]])
  np.testing.assert_allclose(k2, [[0.125, 0.5, 5000.0, 5000.0]])  # x²/2
  # k3 = e^{−x} + x − 1: x=.5 -> .606531 − .5 = .106531; x=−1 -> e − 2 = .718282;
  # x=100 -> ref − logp clamped to −20: e^{−20} + 20 − 1 = 19; x=−100 -> e^{20} − 21.
  want = np.array([0.106531, 0.718282, 19.0, np.exp(20.0) - 21.0])
  np.testing.assert_allclose(k3, 2.0 * want[None], rtol=1e-5)
  np.testing.assert_allclose(m3["kl_ref"], want.mean(), rtol=1e-5)
  # d k3 / d logp = 1 − e^{ref − logp}: 1 − e^{−.5} = .393469 at x = .5.
  g = jax.grad(lambda lp: policy_loss.kl_penalty(lp, ref, mask, coef=1.0)[0][0, 0])(logp)
  np.testing.assert_allclose(g[0, 0], 0.393469, rtol=1e-5)
  with pytest.raises(ValueError, match="valid names: k1, k2, k3"):
    policy_loss.kl_penalty(logp, ref, mask, coef=1.0, estimator="k4")


def test_entropy_bonus_golden():
  entropy = np.array([[1.0, 2.0], [3.0, np.nan]], np.float32)
  mask = np.array([[1, 1], [1, 0]], np.float32)
  loss, m = policy_loss.entropy_bonus(entropy, mask, coef=0.1)
  np.testing.assert_allclose(loss, [[-0.1, -0.2], [-0.3, 0.0]], rtol=1e-6)
  np.testing.assert_allclose(m["entropy"], 2.0)  # (1 + 2 + 3)/3


def _all_losses():
  key = jax.random.key(0)
  return [(name, lambda *a, fn=POLICY_LOSSES.get(name): fn(*a, rng=key))
          for name in POLICY_LOSSES.names()]


def test_registry_holds_the_shared_call_form():
  assert {"ppo", "pg", "gspo", "clip_cov", "kl_cov"} <= set(POLICY_LOSSES.names())
  with pytest.raises(ValueError, match="valid names: .*ppo"):
    POLICY_LOSSES.get("ppo2")


@pytest.mark.parametrize("name,fn", _all_losses())
def test_shared_call_form_jit_vmap_bf16(name, fn):
  rng = np.random.default_rng(3)
  old = rng.normal(size=(4, 5)).astype(np.float32)
  logp = old + rng.normal(size=(4, 5)).astype(np.float32) * 0.1
  adv = rng.normal(size=(4,)).astype(np.float32)
  mask = (rng.uniform(size=(4, 5)) < 0.8).astype(np.float32)
  fn = jax.jit(fn)
  loss, metrics = fn(logp, old, adv, mask)
  assert loss.shape == (4, 5) and loss.dtype == jnp.float32
  # scalars, and the bool [B, T] tokens a selecting loss (Clip-Cov, KL-Cov) acted on
  selected = metrics.pop("selected", np.zeros((4, 5), bool))
  assert selected.shape == (4, 5) and selected.dtype == jnp.bool_
  assert all(jnp.shape(v) == () for v in metrics.values())
  np.testing.assert_array_equal(np.asarray(loss)[mask == 0], 0.0)
  # [B] and the same advantage broadcast to [B, T] are the same input.
  loss_bt, _ = fn(logp, old, np.repeat(adv[:, None], 5, 1), mask)
  np.testing.assert_allclose(loss_bt, loss, rtol=1e-6)
  # bf16 inputs: fp32 outputs.
  bf = lambda x: jnp.asarray(x, jnp.bfloat16)
  loss16, metrics16 = fn(bf(logp), bf(old), bf(adv), jnp.asarray(mask, jnp.bool_))
  assert loss16.dtype == jnp.float32
  assert all(v.dtype == jnp.float32 for k, v in metrics16.items() if k != "selected")
  # vmap over a leading axis of mini-batches.
  vloss, _ = jax.jit(jax.vmap(fn))(*(np.stack([x, x]) for x in (logp, old, adv, mask)))
  np.testing.assert_allclose(vloss[1], loss, rtol=1e-6)


@pytest.mark.parametrize("name,fn", _all_losses())
def test_all_zero_mask_gives_finite_zeros(name, fn):
  garbage = jnp.full((2, 3), jnp.nan)
  fn = jax.jit(fn)
  loss, metrics = fn(garbage, garbage, jnp.full((2,), jnp.nan), jnp.zeros((2, 3)))
  np.testing.assert_array_equal(loss, 0.0)
  assert not np.any(metrics.pop("selected", False))
  assert all(float(v) == 0.0 for v in metrics.values())
  grad = jax.jit(jax.grad(lambda lp: jnp.sum(fn(lp, garbage, jnp.ones(2), jnp.zeros((2, 3)))[0])))(
      garbage)
  np.testing.assert_array_equal(grad, 0.0)


_ppo_with_grad = jax.jit(lambda lp, old, adv, mask: (
    policy_loss.ppo_loss(lp, old, adv, mask),
    jax.grad(lambda x: _token_mean(policy_loss.ppo_loss(x, old, adv, mask)[0], mask))(lp),
    policy_loss.kl_penalty(lp, old, mask, coef=1.0)[0]))


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(b=st.integers(1, 3), t=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_property_finite(b, t, seed):
  rng = np.random.default_rng(seed)
  # Wild log-probs (ratios up to e^±60, clamped) and NaN under padding.
  old = (rng.normal(size=(b, t)) * 20).astype(np.float32)
  logp = (rng.normal(size=(b, t)) * 20).astype(np.float32)
  adv = (rng.normal(size=(b, t)) * 5).astype(np.float32)
  mask = (rng.uniform(size=(b, t)) < rng.uniform()).astype(np.float32)
  logp[mask == 0] = np.nan
  (loss, metrics), grad, kl = _ppo_with_grad(logp, old, adv, mask)
  assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad)) and np.all(np.isfinite(kl))
  assert all(np.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("term", ["kl", "entropy"])
def test_terms_jit_vmap_bf16_and_empty_mask(term):
  rng = np.random.default_rng(4)
  logp = rng.normal(size=(3, 4)).astype(np.float32)
  ref = logp + rng.normal(size=(3, 4)).astype(np.float32) * 0.2
  mask = (rng.uniform(size=(3, 4)) < 0.7).astype(np.float32)
  if term == "kl":
    fn = jax.jit(lambda lp, m: policy_loss.kl_penalty(lp, ref, m, coef=0.1, estimator="k2"))
  else:
    fn = jax.jit(lambda h, m: policy_loss.entropy_bonus(h, m, coef=0.01))
  loss, metrics = fn(logp, mask)
  vloss, _ = jax.vmap(fn)(np.stack([logp, logp]), np.stack([mask, mask]))
  np.testing.assert_allclose(vloss[1], loss, rtol=1e-6)
  loss16, metrics16 = fn(jnp.asarray(logp, jnp.bfloat16), mask.astype(bool))
  assert loss16.dtype == jnp.float32 and all(v.dtype == jnp.float32 for v in metrics16.values())
  loss0, metrics0 = fn(logp, np.zeros_like(mask))
  np.testing.assert_array_equal(loss0, 0.0)
  assert all(float(v) == 0.0 for v in metrics0.values())
