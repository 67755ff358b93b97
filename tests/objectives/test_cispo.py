"""CISPO (arXiv 2506.13585): a NumPy reference for the loss and its gradient, and the
tokens PPO's clip drops keep a gradient."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import policy_loss
from explore_rl.objectives.catalog import POLICY_LOSSES
from explore_rl.objectives.cispo import cispo_loss


def _batch(seed, shape=(3, 6)):
  rng = np.random.default_rng(seed)
  logp = rng.normal(-1.5, 0.6, shape).astype(np.float32)
  old = (logp + rng.normal(0, 0.4, shape)).astype(np.float32)
  adv = rng.normal(0, 1, shape[0]).astype(np.float32)
  mask = np.arange(shape[1]) < rng.integers(1, shape[1] + 1, shape[0])[:, None]
  logp[~mask] = np.nan   # padding may hold garbage
  return logp, old, adv, mask


def _reference(logp, old, adv, mask, low, high):
  """ℓ = −clip(ρ, 1 − low, 1 + high)·Â·logp and ∂ℓ/∂logp = −clip(ρ)·Â, 0 under padding."""
  w = np.clip(np.exp(np.where(mask, logp - old, 0.0)), 1 - low, 1 + high)
  a = np.broadcast_to(adv[:, None], logp.shape)
  return np.where(mask, -w * a * np.where(mask, logp, 0.0), 0.0), np.where(mask, -w * a, 0.0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("low, high", [(1.0, 0.2), (0.2, 0.28)])
def test_loss_and_gradient_match_numpy(seed, low, high):
  logp, old, adv, mask = _batch(seed)
  want_loss, want_grad = _reference(logp, old, adv, mask, low, high)
  loss, metrics = cispo_loss(logp, old, adv, mask, clip_eps_low=low, clip_eps_high=high)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5, atol=1e-6)
  grad = jax.grad(lambda lp: jnp.sum(cispo_loss(lp, old, adv, mask, clip_eps_low=low,
                                                clip_eps_high=high)[0]))(logp)
  np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6)
  ratio = np.exp(np.where(mask, logp - old, 0.0))
  clipped = (ratio < 1 - low) | (ratio > 1 + high)
  np.testing.assert_allclose(metrics["clip_frac"], clipped[mask].mean(), rtol=1e-6)
  assert {"cispo_weight_mean", "approx_kl", "ratio_mean", "ratio_max"} <= set(metrics)


def test_tokens_ppo_drops_keep_their_gradient():
  # Â > 0 with ρ = 1.5 > 1 + ε and Â < 0 with ρ = 0.5 < 1 − ε: PPO's clip zeroes both
  # gradients; CISPO weights them by clip(ρ) = 1.2 (upper bound) and 0.5 (no lower bound).
  old = np.log(np.array([[0.2, 0.4]], np.float32))
  logp = old + np.log(np.array([[1.5, 0.5]], np.float32))
  adv = np.array([[1.0, -1.0]], np.float32)
  mask = np.ones_like(logp, bool)
  ppo = jax.grad(lambda lp: jnp.sum(policy_loss.ppo_loss(lp, old, adv, mask,
                                                         dual_clip_c=None)[0]))(logp)
  np.testing.assert_array_equal(ppo, 0.0)
  grad = jax.grad(lambda lp: jnp.sum(cispo_loss(lp, old, adv, mask)[0]))(logp)
  np.testing.assert_allclose(grad, [[-1.2, 0.5]], rtol=1e-5)


def test_registered_with_token_mean_and_rejects_negative_ranges():
  assert POLICY_LOSSES.get("cispo") is cispo_loss
  assert POLICY_LOSSES.info("cispo")["aggregation"] == "token-mean"
  logp, old, adv, mask = _batch(0)
  with pytest.raises(ValueError, match=">= 0"):
    cispo_loss(logp, old, adv, mask, clip_eps_high=-0.1)
