"""The Gibbs policy fitted by reward-weighted regression (RWR), as an advantage estimator.

The KL-regularised objective max_π E_π[r] − (1/λ)·KL(π ‖ π_ref) has the closed-form
optimum (the Gibbs policy; e.g. arXiv 2305.18290, eq. 4)

    π*(y | x) = π_ref(y | x) · exp(λ r(x, y)) / Z(x),   Z(x) = E_{y∼π_ref}[exp(λ r(x, y))].

Reward-weighted regression (Peters & Schaal, ICML 2007; AWR, arXiv 1910.00177; MPO's
E-step, arXiv 1806.06920) projects π* onto the policy class by weighted maximum
likelihood on samples y_1..y_N ∼ π_ref of each prompt:

    max_θ Σ_i w_i log π_θ(y_i | x),   w_i = exp(λ r_i) / Ẑ,   Ẑ = (1/n) Σ_{j valid} exp(λ r_j)

(self-normalised within the prompt's group, over its n valid samples). As N grows the
weighted empirical distribution (1/N) Σ_i w_i δ_{y_i} tends to π*. Here π_ref is the
policy that drew the group (each step fits the Gibbs policy of the current behaviour
policy: a trust region of size 1/λ per step).

Normalisation to mean 1 (not sum 1) keeps λ → 0 at exactly plain behaviour cloning of
the group (every w_i = 1, the SFT scale), and λ → ∞ at cloning the group's best sample(s):
w_i = n / #{argmax} on the maximisers, 0 elsewhere. `max_weight` optionally clips the
weights at w_max (AWR clips at 20) without renormalising; `min_weight` floors them.

As an advantage estimator the weights are the per-sample advantages Â_i = w_i, and the
`pg` loss ℓ = −Â·ρ (ρ = π/π_old, 1 at the sampling policy) has gradient
−w_i·∇log π(y_i): the weighted log-likelihood's. With `seq-mean-token-sum` aggregation the
loss is exactly −(1/B) Σ_i w_i log π(y_i) in gradient; `token-mean` weights each token
instead of each sequence. docs/algorithms.md, "Gibbs policy / reward-weighted regression".
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["gibbs_rwr"]


def gibbs_rwr(rewards: jax.Array, mask: jax.Array | None = None, *, lam: float = 1.0,
              max_weight: float | None = None, min_weight: float = 0.0) -> jax.Array:
  """RWR weights w_i = exp(λ r_i) / mean_{j valid} exp(λ r_j) per group, as advantages.

  rewards, mask: [..., N] (the N samples of a prompt on the last axis); invalid samples get
  0 and do not enter the normaliser. λ = `lam` ≥ 0 (the inverse KL temperature); computed
  as n·softmax(λ r) over the valid samples (stable for any λ). max_weight: clip above
  (None: no clip); min_weight: clip below. Returns fp32 [..., N]; a group without valid
  samples gets 0.
  """
  if not lam >= 0:
    raise ValueError(f"lam must be >= 0, got {lam}")
  rewards = rewards.astype(jnp.float32)
  valid = jnp.ones(rewards.shape, bool) if mask is None else mask.astype(bool)
  n = jnp.sum(valid, axis=-1, keepdims=True).astype(jnp.float32)
  logits = jnp.where(valid, lam * jnp.where(valid, rewards, 0.0), -jnp.inf)
  top = jnp.max(logits, axis=-1, keepdims=True)
  top = jnp.where(jnp.isfinite(top), top, 0.0)                   # all-invalid groups
  e = jnp.where(valid, jnp.exp(logits - top), 0.0)
  z = jnp.sum(e, axis=-1, keepdims=True)
  w = jnp.where(valid, n * e / jnp.where(z > 0, z, 1.0), 0.0)
  if max_weight is not None:
    w = jnp.minimum(w, max_weight)
  w = jnp.where(valid, jnp.maximum(w, min_weight), 0.0)
  return jax.lax.stop_gradient(w)
