"""Loss aggregation: per-token loss[B, T] -> (numerator, denominator), verl `agg_loss` modes.

Every mode returns a pair whose ratio is the loss, and whose parts are SUMS over
sequences, so that splitting the batch axis B into micro-batches (gradient
accumulation) or data-parallel shards and summing the parts gives exactly the
whole-batch value:

    loss = Σ_k num_k / max(Σ_k den_k, 1)          (`finalize`)

| mode                      | numerator                     | denominator          |
|---------------------------|-------------------------------|----------------------|
| `token-mean`              | Σ_{i,t} m ℓ                   | Σ_{i,t} m            |
| `seq-mean-token-sum`      | Σ_i Σ_t m ℓ                   | #valid sequences     |
| `seq-mean-token-mean`     | Σ_i (Σ_t m ℓ / max(Σ_t m, 1)) | #valid sequences     |
| `seq-mean-token-sum-norm` | Σ_i Σ_t m ℓ / C               | #valid sequences     |

A sequence is valid when it has at least one unmasked token; padding sequences
(all-zero mask rows) count in no denominator. `seq-mean-token-sum-norm` is
Dr. GRPO's constant normaliser (arXiv 2503.20783): each sequence's token sum is
divided by a constant C (the maximum response length) instead of its own length,
then averaged over sequences, as in the reference code's
`(masked_sum(ℓ, m, axis=-1) / max_len).mean()`; the whole-batch constant of
docs/algorithms.md's Σmℓ / C is then C·B. Splitting along the token axis T is exact for
every mode except `seq-mean-token-mean`, whose per-sequence mean needs the whole row.

All arithmetic is fp32 whatever the input dtype.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.shapes import assert_like
from explore_rl.registry import Registry

__all__ = [
    "aggregate",
    "finalize",
    "masked_mean",
    "seq_mean_token_mean",
    "seq_mean_token_sum",
    "seq_mean_token_sum_norm",
    "token_mean",
]

AGGREGATIONS = Registry("loss aggregation")


def _prepare(per_token_loss: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  mask = mask.astype(jnp.float32)  # [B, T]
  # Double where: garbage (NaN/Inf) under padding must reach neither value nor gradient.
  loss = jnp.where(mask > 0, per_token_loss.astype(jnp.float32), 0.0)  # [B, T]
  return loss * mask, mask


def _num_valid_sequences(mask: jax.Array) -> jax.Array:
  return jnp.sum(jnp.sum(mask, axis=-1) > 0).astype(jnp.float32)


def masked_mean(x: jax.Array, mask: jax.Array, axis=None) -> jax.Array:
  """Σ m·x / max(Σ m, 1) in fp32; masked entries of x may hold NaN/Inf."""
  mask = jnp.broadcast_to(mask, x.shape).astype(jnp.float32)
  x = jnp.where(mask > 0, x.astype(jnp.float32), 0.0)
  return jnp.sum(x * mask, axis=axis) / jnp.maximum(jnp.sum(mask, axis=axis), 1.0)


@AGGREGATIONS.register("token-mean")
def token_mean(per_token_loss: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Σ_{i,t} m ℓ, Σ_{i,t} m): every valid token weighs the same (DAPO, arXiv 2503.14476)."""
  loss, mask = _prepare(per_token_loss, mask)
  return jnp.sum(loss), jnp.sum(mask)


@AGGREGATIONS.register("seq-mean-token-sum")
def seq_mean_token_sum(per_token_loss: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Σ_i Σ_t m ℓ, #valid sequences)."""
  loss, mask = _prepare(per_token_loss, mask)
  return jnp.sum(loss), _num_valid_sequences(mask)


@AGGREGATIONS.register("seq-mean-token-mean")
def seq_mean_token_mean(per_token_loss: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(Σ_i Σ_t m ℓ / max(Σ_t m, 1), #valid sequences): GRPO's (arXiv 2402.03300) length norm."""
  loss, mask = _prepare(per_token_loss, mask)
  per_seq = jnp.sum(loss, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)  # [B]
  return jnp.sum(per_seq), _num_valid_sequences(mask)


@AGGREGATIONS.register("seq-mean-token-sum-norm")
def seq_mean_token_sum_norm(
    per_token_loss: jax.Array, mask: jax.Array, *, norm: float
) -> tuple[jax.Array, jax.Array]:
  """(Σ_i Σ_t m ℓ / C, #valid sequences), C = `norm` (Dr. GRPO: the max response length)."""
  if not norm > 0:
    raise ValueError(f"norm must be a positive constant, got {norm!r}")
  loss, mask = _prepare(per_token_loss, mask)
  return jnp.sum(loss) / jnp.float32(norm), _num_valid_sequences(mask)


def aggregate(
    per_token_loss: jax.Array, mask: jax.Array, *, mode: str = "token-mean", **kwargs
) -> tuple[jax.Array, jax.Array]:
  """Looks `mode` up in AGGREGATIONS and returns its (numerator, denominator)."""
  assert_like("per_token_loss", per_token_loss, mask=mask)
  return AGGREGATIONS.get(mode)(per_token_loss, mask, **kwargs)


def finalize(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
  """numerator / max(denominator, 1): 0 (not NaN) for an all-padding batch."""
  return numerator / jnp.maximum(denominator, 1.0)
