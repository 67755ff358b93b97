"""Logits processors: temperature, top-k, top-p (nucleus), min-p.

Each maps logits [..., V] to logits with excluded tokens at -inf; they compose.
Static shapes throughout: thresholds come from sorts, not from dynamic slicing.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  temperature: float = 1.0   # 0 means greedy (argmax)
  top_k: int = 0             # 0 disables
  top_p: float = 1.0         # 1 disables
  min_p: float = 0.0         # 0 disables
  max_new_tokens: int = 64


def top_k_mask(logits: jax.Array, k: int) -> jax.Array:
  """Keep the k largest logits (ties at the k-th value are kept)."""
  if k <= 0 or k >= logits.shape[-1]:
    return logits
  kth = jax.lax.top_k(logits, k)[0][..., -1:]
  return jnp.where(logits >= kth, logits, NEG_INF)


def top_p_mask(logits: jax.Array, p: float) -> jax.Array:
  """Keep the smallest set of most likely tokens whose probability reaches p.

  A token is kept when the mass strictly before it (in descending order) is < p,
  so the most likely token is always kept.
  """
  if p >= 1.0:
    return logits
  probs = jax.nn.softmax(logits, axis=-1)
  sorted_probs = -jnp.sort(-probs, axis=-1)
  mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
  keep_sorted = mass_before < p
  # The smallest kept probability is the threshold in the unsorted order.
  threshold = jnp.min(jnp.where(keep_sorted, sorted_probs, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(probs >= threshold, logits, NEG_INF)


def min_p_mask(logits: jax.Array, min_p: float) -> jax.Array:
  """Keep tokens with probability >= min_p * (largest probability)."""
  if min_p <= 0.0:
    return logits
  logp = jax.nn.log_softmax(logits, axis=-1)
  cut = jnp.max(logp, axis=-1, keepdims=True) + jnp.log(min_p)
  return jnp.where(logp >= cut, logits, NEG_INF)


def policy_logits(logits: jax.Array, temperature: float) -> jax.Array:
  """fp32 logits / T: the policy a run trains at its sampling temperature (T = 0: as is)."""
  logits = logits.astype(jnp.float32)
  return logits / temperature if temperature > 0 else logits


def process_logits(logits: jax.Array, cfg: SamplingConfig) -> jax.Array:
  """Temperature, then top-k, top-p and min-p, all in fp32."""
  logits = policy_logits(logits, cfg.temperature)
  logits = top_k_mask(logits, cfg.top_k)
  logits = top_p_mask(logits, cfg.top_p)
  return min_p_mask(logits, cfg.min_p)


def sample_token(rng: jax.Array, logits: jax.Array, cfg: SamplingConfig):
  """Draw one token per row: (tokens int32 [B], log-prob under the processed dist [B])."""
  processed = process_logits(logits, cfg)
  if cfg.temperature == 0:
    tokens = jnp.argmax(processed, axis=-1)
    return tokens.astype(jnp.int32), jnp.zeros(tokens.shape, jnp.float32)
  tokens = jax.random.categorical(rng, processed, axis=-1)
  logp = jnp.take_along_axis(jax.nn.log_softmax(processed, -1), tokens[..., None], -1)[..., 0]
  return tokens.astype(jnp.int32), logp
