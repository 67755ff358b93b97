"""No RL advantage: for runs that train by added loss terms only."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def no_advantages(rewards: jax.Array) -> jax.Array:
  """All-zero advantages [..., N] (`objective.advantage="none"`): the policy term of the
  loss vanishes, so only added terms train the policy (pure self-distillation,
  `objective.distill`; docs/algorithms.md, "Self-distillation")."""
  return jnp.zeros(jnp.shape(rewards), jnp.float32)
