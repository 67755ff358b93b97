"""A BERT encoder and Sentence-BERT mean pooling as pure JAX functions.

BERT (Devlin et al., arXiv 1810.04805), post-LayerNorm blocks:
  h_0 = LN(E_tok[x] + E_pos[t] + E_type[0])
  a   = LN(h + W_o · softmax(q kᵀ / √d_head + bias_mask) v)
  h'  = LN(a + W_2 · gelu_erf(W_1 a))
Sentence embedding (Reimers & Gurevych, arXiv 1908.10084):
  e = u / max(‖u‖, 1e-12),  u = Σ_t m_t h_t / max(Σ_t m_t, 1e-9).
Weights are `[in, out]`; the layer weights are stacked on a leading [L] axis
and scanned. Matmuls run in fp32 at HIGHEST precision so embeddings (and the
rewards built on them) do not change with the accelerator's TF32 default.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, Any]
_HIGHEST = jax.lax.Precision.HIGHEST


def _layer_norm(x: jax.Array, p: Params, eps: float) -> jax.Array:
  mean = x.mean(-1, keepdims=True)
  var = jnp.square(x - mean).mean(-1, keepdims=True)
  return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def _dense(x: jax.Array, p: Params) -> jax.Array:
  return jnp.einsum("...i,io->...o", x, p["kernel"], precision=_HIGHEST) + p["bias"]


def _block(h: jax.Array, p: Params, mask: jax.Array, num_heads: int, eps: float) -> jax.Array:
  """One post-LN transformer block; h: [B, T, H], mask: bool[B, T]."""
  batch, length, hidden = h.shape
  split = lambda x: x.reshape(batch, length, num_heads, hidden // num_heads)
  q, k, v = (split(_dense(h, p[name])) for name in ("query", "key", "value"))  # [B, T, h, d]
  scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, precision=_HIGHEST) / jnp.sqrt(
      jnp.float32(hidden // num_heads))  # [B, h, T, T]
  # Padded keys get the most negative finite logit (as HF BERT), never -inf: no NaN rows.
  scores = jnp.where(mask[:, None, None, :], scores, jnp.finfo(jnp.float32).min)
  context = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v,
                       precision=_HIGHEST).reshape(batch, length, hidden)
  a = _layer_norm(h + _dense(context, p["attn_out"]), p["attn_ln"], eps)
  ff = _dense(jax.nn.gelu(_dense(a, p["ffn_in"]), approximate=False), p["ffn_out"])
  return _layer_norm(a + ff, p["ffn_ln"], eps)


def bert_encode(params: Params, token_ids: jax.Array, mask: jax.Array, *, num_heads: int,
                eps: float = 1e-12) -> jax.Array:
  """Final hidden states [B, T, H] of int32 `token_ids[B, T]` with bool `mask[B, T]`."""
  length = token_ids.shape[1]
  h = (params["word"][token_ids] + params["position"][:length][None]
       + params["token_type"][0])  # [B, T, H]
  h = _layer_norm(h.astype(jnp.float32), params["embed_ln"], eps)

  def step(h, layer):
    return _block(h, layer, mask, num_heads, eps), None

  h, _ = jax.lax.scan(step, h, params["layers"])
  return h


def mean_pool_normalize(hidden: jax.Array, mask: jax.Array) -> jax.Array:
  """Masked mean over tokens, then L2 normalisation: [B, T, H] -> [B, H]."""
  m = mask.astype(jnp.float32)[..., None]  # [B, T, 1]
  pooled = (hidden * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)  # [B, H]
  norm = jnp.linalg.norm(pooled, axis=-1, keepdims=True)
  return pooled / jnp.maximum(norm, 1e-12)
