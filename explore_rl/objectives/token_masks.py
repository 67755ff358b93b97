"""Token masks: which tokens the policy gradient trains on (`config.objective.token_mask`).

A mask is a pure function of the learner's per-token arrays -> bool [B, T], chosen over
ALL valid tokens of the arrays passed in; the trainer passes the whole mini-batch, so the
choice does not depend on how the mini-batch is cut into micro-batches or over devices
(training/update.py). The policy loss is kept on the chosen tokens and zeroed elsewhere;
the aggregation still divides by every valid token (objectives/loss_terms.py).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.entropy_control import selection_count, top_k_mask
from explore_rl.objectives.shapes import assert_like
from explore_rl.registry import Registry

__all__ = ["TOKEN_MASKS", "check_fraction", "forking_tokens"]

TOKEN_MASKS = Registry("token mask")


def check_fraction(name: str, fraction: float) -> float:
  """`fraction` as a float in (0, 1], else a one-line ValueError naming `name`."""
  fraction = float(fraction)
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"{name} must be in (0, 1], got {fraction}")
  return fraction


@TOKEN_MASKS.register("forking")
def forking_tokens(entropy: jax.Array, mask: jax.Array, *, fraction: float = 0.2) -> jax.Array:
  """The high-entropy "forking" tokens (Wang et al., "Beyond the 80/20 Rule", arXiv
  2506.01939): the top max(⌊ρ·N_valid⌋, 1) valid tokens by entropy H_t of the current
  policy, ρ = `fraction` (the paper's 0.2); ties go to the lower flat index.

      J = E[ Σ_{i,t} 1[H_{i,t} ≥ τ_ρ] · ℓ^policy_{i,t} / Σ_i |o_i| ],
      τ_ρ the (1 − ρ)-quantile of H over the batch's valid tokens.

  entropy, mask [B, T] -> bool [B, T] (never a padding token; detached).
  """
  assert_like("entropy", entropy, mask=mask)
  fraction = check_fraction("forking fraction", fraction)
  valid = mask.astype(bool)
  entropy = jax.lax.stop_gradient(jnp.where(valid, entropy.astype(jnp.float32), -jnp.inf))
  count = jnp.minimum(selection_count(fraction, jnp.sum(valid)), jnp.sum(valid))
  return valid & top_k_mask(entropy, count)
