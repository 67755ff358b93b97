"""The optimizer's schedule: warmup_steps=0 means the first update uses the full rate."""
import jax.numpy as jnp
import pytest

from explore_rl.training.state import make_optimizer


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_first_update_without_warmup_is_not_a_no_op(schedule):
  opt = make_optimizer(learning_rate=0.5, warmup_steps=0, total_steps=10, schedule=schedule,
                       grad_clip=1e9)
  params = {"w": jnp.ones(2)}
  update, _ = opt.update({"w": jnp.ones(2)}, opt.init(params), params)
  # Adam's first step is lr * g / (|g| + eps) = lr (a regression: it was 0).
  assert float(update["w"][0]) == pytest.approx(-0.5, rel=1e-4)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_warmup_starts_at_zero(schedule):
  opt = make_optimizer(learning_rate=0.5, warmup_steps=4, total_steps=10, schedule=schedule)
  params = {"w": jnp.ones(2)}
  update, _ = opt.update({"w": jnp.ones(2)}, opt.init(params), params)
  assert float(update["w"][0]) == 0.0
