"""The public boundaries of objectives/ and sampling/ check shapes with chex: a wrong shape
fails at trace time with a message naming the argument."""
import jax
import jax.numpy as jnp
import pytest

from explore_rl.objectives import advantages, entropy_control, policy_loss
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.distillation import distillation_loss


def test_a_wrong_shape_names_the_argument():
  lp, mask = jnp.zeros((2, 5)), jnp.ones((2, 5), bool)
  with pytest.raises(AssertionError, match="old_logprobs must have the shape of logprobs"):
    policy_loss.ppo_loss(lp, jnp.zeros((2, 4)), jnp.zeros(2), mask)
  with pytest.raises(AssertionError, match="advantages has the wrong rank"):
    entropy_control.kl_cov_loss(lp, lp, jnp.zeros((2, 5, 1)), mask, ratio=0.1, kl_coef=1.0)
  with pytest.raises(AssertionError, match="mask must have the shape of rewards"):
    advantages.grpo(jnp.zeros((3, 4)), jnp.ones((3, 5)))
  with pytest.raises(AssertionError, match="mask must have the shape of per_token_loss"):
    aggregate(lp, mask[:, :3])
  with pytest.raises(AssertionError, match="tokens must hold integers"):
    distillation_loss(jnp.zeros((2, 5, 7)), jnp.zeros((2, 5, 7)), lp, mask)


def test_checks_hold_under_jit():
  loss = jax.jit(lambda lp, ref: policy_loss.kl_penalty(lp, ref, jnp.ones((2, 5)), coef=0.1))
  with pytest.raises(AssertionError, match="ref_logprobs must have the shape of logprobs"):
    loss(jnp.zeros((2, 5)), jnp.zeros((2, 6)))
