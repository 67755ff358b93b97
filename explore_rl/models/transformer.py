"""A Llama/Qwen2-style decoder-only transformer in Flax NNX.

RMSNorm, rotary position embeddings (theta and llama3/linear scaling), SwiGLU
MLP, grouped-query attention (full forward: `jax.nn.dot_product_attention`, the
fused kernel, on accelerators; on CPU the decode step's grouped matmuls,
`cached_attention`), optional q/k/v biases (Qwen2), tied or untied embeddings.
Parameter names follow Hugging Face's (`layers.3.self_attn.q_proj.kernel`), so
checkpoint import is a renaming plus a transpose. Optional LoRA adapters on the
projections (`ModelConfig.lora_rank`, models/lora.py) and per-block rematerialisation
(`ModelConfig.remat`).

The module is the definition; training and sampling use it functionally:
`graphdef, params = split(model)` and `forward(graphdef, params, ...)`, so the
update step is a pure jitted function of plain pytrees.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from explore_rl.models import dense, lora
from explore_rl.models.config import ModelConfig


class KVCache(NamedTuple):
  """Preallocated keys [B, kv_heads, head_dim, S] and values [B, kv_heads, S, head_dim],
  one array each per layer.

  The layouts the two attention matmuls consume as they are: scores are
  q [G·T, H] @ k [H, S] and outputs probs [G·T, S] @ v [S, H] per (row, kv head),
  both plain row-major matmuls (with k stored [S, H] XLA:CPU ran the attention of
  a decode step at half the memory bandwidth: benchmarks/README.md). A decode
  step copies nothing but the new token's keys and values; for that, a bf16 model's cache is
  fp32 on XLA:CPU (`cache_dtype`).
  """
  k: tuple[jax.Array, ...]
  v: tuple[jax.Array, ...]

  @classmethod
  def zeros(cls, config: ModelConfig, batch: int, length: int) -> "KVCache":
    b, n, h = batch, config.num_key_value_heads, config.head_size
    dt = cache_dtype(config.compute_dtype)
    layers = range(config.num_hidden_layers)
    return cls(tuple(jnp.zeros((b, n, h, length), dt) for _ in layers),
               tuple(jnp.zeros((b, n, length, h), dt) for _ in layers))

  @property
  def length(self) -> int:
    return self.v[0].shape[2]

  def grow(self, length: int) -> "KVCache":
    """The same cache with `length` slots, the new ones zero (a copy; `length` >= S)."""
    extra = length - self.length
    if extra < 0:
      raise ValueError(f"cannot shrink a cache of {self.length} slots to {length}")
    pad = lambda axis: lambda x: jnp.pad(x, [(0, extra if i == axis else 0)
                                             for i in range(x.ndim)])
    return KVCache(tuple(map(pad(3), self.k)), tuple(map(pad(2), self.v)))


def cache_dtype(dtype) -> jnp.dtype:
  """The dtype a KV cache of `dtype` keys and values is stored in: `dtype`, except 16-bit
  floats on XLA:CPU, stored in fp32 (the same values, exactly). XLA:CPU runs a bf16
  dynamic-update-slice in fp32, converting the whole cache there and back at every decode
  step: at batch 32 and 640 slots of SmolLM2-135M, 118 ms of a 260 ms step. On an fp32 cache
  the write is in place and the step, attention read in fp32, takes 146 ms
  (benchmarks/README.md, "Tenth speed pass")."""
  dtype = jnp.dtype(dtype)
  if jax.default_backend() == "cpu" and dtype.itemsize == 2 and \
      jnp.issubdtype(dtype, jnp.floating):
    return jnp.dtype(jnp.float32)
  return dtype


def rope_frequencies(config: ModelConfig) -> jax.Array:
  """Inverse frequencies [head_dim/2], with HF's `linear` and `llama3` scalings."""
  d = config.head_size
  inv = 1.0 / (config.rope_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  scaling = config.rope_scaling_dict
  kind = scaling.get("rope_type", scaling.get("type", "default"))
  if kind in ("default", None):
    return inv
  if kind == "linear":
    return inv / scaling["factor"]
  if kind == "llama3":
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    smooth = (old_len / wavelen - low) / (high - low)
    mid = (1 - smooth) * inv / factor + smooth * inv
    return jnp.where(wavelen > old_len / low, inv / factor,
                     jnp.where(wavelen < old_len / high, inv, mid))
  raise ValueError(f"unsupported rope scaling {kind!r}; valid: default, linear, llama3")


def apply_rope(x: jax.Array, positions: jax.Array, inv_freq: jax.Array) -> jax.Array:
  """Rotate-half RoPE (HF convention). x [B, T, H, D], positions [B, T]."""
  angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, D/2]
  cos = jnp.cos(angles)[:, :, None, :]
  sin = jnp.sin(angles)[:, :, None, :]
  x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x.dtype)


class RMSNorm(nnx.Module):
  """y = x / rms(x) * scale, computed in fp32 and cast back (as HF Llama does)."""

  def __init__(self, dim: int, eps: float, param_dtype):
    self.scale = nnx.Param(jnp.ones((dim,), param_dtype))
    self.eps = eps

  def __call__(self, x):
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return self.scale.value * x32.astype(x.dtype)


def _linear(cfg: ModelConfig, name: str, din: int, dout: int, rngs: nnx.Rngs,
            bias: bool = False):
  """The projection `name` (q_proj, ...): with LoRA adapters when it is a LoRA target."""
  low = cfg.low_precision_matmul
  kw = dict(use_bias=bias, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype,
            dot_general=dense.dot_general(low) if low else jax.lax.dot_general,
            kernel_init=nnx.initializers.normal(0.02), rngs=rngs)
  if cfg.lora_rank and name in cfg.lora_targets:
    return lora.LoRALinear(din, dout, rank=cfg.lora_rank, alpha=cfg.lora_alpha, **kw)
  return nnx.Linear(din, dout, **kw)


class Attention(nnx.Module):
  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    h, nq, nkv = cfg.head_size, cfg.num_attention_heads, cfg.num_key_value_heads
    self.q_proj = _linear(cfg, "q_proj", cfg.hidden_size, nq * h, rngs, cfg.attention_bias)
    self.k_proj = _linear(cfg, "k_proj", cfg.hidden_size, nkv * h, rngs, cfg.attention_bias)
    self.v_proj = _linear(cfg, "v_proj", cfg.hidden_size, nkv * h, rngs, cfg.attention_bias)
    self.o_proj = _linear(cfg, "o_proj", nq * h, cfg.hidden_size, rngs)
    self.shape = (nq, nkv, h)

  def __call__(self, x, positions, inv_freq, mask, kv, cache_index):
    """x [B, T, D]; mask [B, T, S] bool; kv: (k [B, K, H, S], v [B, K, S, H]) or None."""
    b, t, d = x.shape
    nq, nkv, h = self.shape
    x2 = x.reshape(b * t, d)  # 2-D projections: XLA:CPU's backward then needs no transposes
    q = apply_rope(self.q_proj(x2).reshape(b, t, nq, h), positions, inv_freq)
    k = apply_rope(self.k_proj(x2).reshape(b, t, nkv, h), positions, inv_freq)
    v = self.v_proj(x2).reshape(b, t, nkv, h)
    if kv is None:  # full forward (training, scoring)
      new_kv = (k, v)
      if jax.default_backend() != "cpu":  # the fused kernel
        out = jax.nn.dot_product_attention(q, k, v, mask=mask[:, None, :, :])  # [B, T, Nq, H]
      else:  # the decode step's grouped matmuls: they ran the update of `small` 9% faster than
        # dot_product_attention's CPU lowering (its GQA copies and layouts; benchmarks/README.md)
        out = cached_attention(q, *cache_layout(k, v), mask)
    else:  # write this chunk at slots [cache_index, cache_index + T), attend to all S
      ck, cv = kv
      k_new, v_new = cache_layout(k.astype(ck.dtype), v.astype(cv.dtype))
      new_kv = (jax.lax.dynamic_update_slice_in_dim(ck, k_new, cache_index, 3),
                jax.lax.dynamic_update_slice_in_dim(cv, v_new, cache_index, 2))
      # in the cache's dtype (`cache_dtype`): reading an fp32 cache as bf16 would convert it
      out = cached_attention(q.astype(ck.dtype), *new_kv, mask).astype(q.dtype)
    return self.o_proj(out.reshape(b * t, nq * h)).reshape(b, t, d), new_kv


def cache_layout(k, v):
  """Keys and values [B, T, K, H] in `KVCache`'s layouts: k [B, K, H, T], v [B, K, T, H]."""
  return k.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)


def cached_attention(q, k, v, mask):
  """softmax(q kᵀ / √H) v over cache slots, grouped-query, scores and softmax in fp32.

  q [B, T, Nq, H], k [B, K, H, S], v [B, K, S, H], mask [B, T, S] -> [B, T, Nq, H].
  The G = Nq / K query heads of a kv head and the T positions form the rows of
  one matmul per (row, kv head): [G·T, H] @ [H, S], then [G·T, S] @ [S, H].
  """
  b, t, nq, h = q.shape
  nkv = k.shape[1]
  g = nq // nkv
  q = q.reshape(b, t, nkv, g, h).transpose(0, 2, 3, 1, 4).reshape(b, nkv, g * t, h)
  scores = jnp.einsum("bkqh,bkhs->bkqs", q, k.astype(q.dtype),
                      preferred_element_type=jnp.float32) / math.sqrt(h)  # [B, K, G·T, S]
  keep = jnp.broadcast_to(mask[:, None, None], (b, 1, g, t, mask.shape[-1]))
  scores = jnp.where(keep.reshape(b, 1, g * t, -1), scores, jnp.finfo(jnp.float32).min)
  probs = jax.nn.softmax(scores, axis=-1).astype(q.dtype)
  out = jnp.einsum("bkqs,bksh->bkqh", probs, v.astype(q.dtype))          # [B, K, G·T, H]
  return out.reshape(b, nkv, g, t, h).transpose(0, 3, 1, 2, 4).reshape(b, t, nq, h)


class MLP(nnx.Module):
  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    self.gate_proj = _linear(cfg, "gate_proj", cfg.hidden_size, cfg.intermediate_size, rngs)
    self.up_proj = _linear(cfg, "up_proj", cfg.hidden_size, cfg.intermediate_size, rngs)
    self.down_proj = _linear(cfg, "down_proj", cfg.intermediate_size, cfg.hidden_size, rngs)

  def __call__(self, x):
    x2 = x.reshape(-1, x.shape[-1])  # 2-D matmuls (see Attention)
    return self.down_proj(jax.nn.silu(self.gate_proj(x2)) * self.up_proj(x2)).reshape(x.shape)


class Block(nnx.Module):
  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.weight_dtype)
    self.self_attn = Attention(cfg, rngs)
    self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.weight_dtype)
    self.mlp = MLP(cfg, rngs)

  def __call__(self, x, positions, inv_freq, mask, kv, cache_index):
    a, kv = self.self_attn(self.input_layernorm(x), positions, inv_freq, mask, kv, cache_index)
    x = x + a
    return x + self.mlp(self.post_attention_layernorm(x)), kv


class Transformer(nnx.Module):
  """Decoder-only LM: tokens [B, T] -> fp32 logits [B, T, V] (+ updated KV cache)."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    self.config = cfg
    self.embed_tokens = nnx.Embed(cfg.vocab_size, cfg.hidden_size, dtype=cfg.compute_dtype,
                                  param_dtype=cfg.weight_dtype,
                                  embedding_init=nnx.initializers.normal(0.02), rngs=rngs)
    self.layers = nnx.List([Block(cfg, rngs) for _ in range(cfg.num_hidden_layers)])
    self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, cfg.weight_dtype)
    if not cfg.tie_word_embeddings:
      self.lm_head = _linear(cfg, "lm_head", cfg.hidden_size, cfg.vocab_size, rngs)

  def __call__(self, tokens, positions, mask, cache: KVCache | None = None, cache_index=0,
               *, head: bool = True):
    """tokens, positions: int32 [B, T]; mask: bool [B, T, S] (S = T without a cache).

    With a cache, this chunk's keys/values are written at slots
    [cache_index, cache_index + T) and every query attends to the S cache slots
    its mask allows. Returns (logits fp32 [B, T, V], new cache or None); with
    head=False the final normed hidden states [B, T, D] instead of the logits, for
    callers that need the head at a few positions only (`logits`: a prefill's last
    slot, the response slots) or a chunk at a time (models/logprobs.py).
    """
    inv_freq = rope_frequencies(self.config)
    x = self.embed_tokens(tokens)
    new_cache = None
    if cache is None:
      x = self._scanned_blocks(x, positions, inv_freq, mask)
    else:
      new_k, new_v = [], []
      for i, layer in enumerate(self.layers):
        x, (k, v) = layer(x, positions, inv_freq, mask, (cache.k[i], cache.v[i]), cache_index)
        new_k.append(k)
        new_v.append(v)
      new_cache = KVCache(tuple(new_k), tuple(new_v))
    x = self.norm(x)
    return (self.logits(x) if head else x), new_cache

  def _scanned_blocks(self, x, positions, inv_freq, mask):
    """The blocks of a full forward (no cache) as one `lax.scan` over their stacked weights.

    XLA then compiles one block instead of `num_hidden_layers` copies (SmolLM2's 30: the
    compile time), and with `ModelConfig.remat` the backward pass recomputes and frees one
    block at a time. Unrolled, XLA:CPU's scheduler ran the 30 recomputations ahead of the
    backward chain and kept their activations: remat saved 0.6 of 8 GiB of temporaries on
    16 rows of 224 tokens (docs/design.md, "Layers as a scan"). The weights keep their
    per-layer layout (`layers.3.mlp...`); the stack is a copy inside the jitted step.
    """
    block_def = nnx.graphdef(self.layers[0])
    stacked = jax.tree.map(lambda *w: jnp.stack(w), *(nnx.state(b) for b in self.layers))

    def body(x, weights):
      x, _ = nnx.merge(block_def, weights)(x, positions, inv_freq, mask, None, 0)
      return x, None

    x, _ = jax.lax.scan(jax.checkpoint(body) if self.config.remat else body, x, stacked)
    return x

  def head_weight(self) -> jax.Array:
    """The output projection [D, V]: the embedding's transpose when tied (through
    `dense.transposed_weight` under 16-bit matmul inputs: a gradient XLA:CPU can run)."""
    if self.config.tie_word_embeddings:
      emb = self.embed_tokens.embedding.value
      return dense.transposed_weight(emb) if self.config.low_precision_matmul else emb.T
    return self.lm_head.kernel.value

  def logits(self, x: jax.Array) -> jax.Array:
    """Final hidden states [..., D] -> logits fp32 [..., V] (`head_logits`)."""
    return head_logits(self.config, x, self.head_weight())


def head_logits(config: ModelConfig, x: jax.Array, w: jax.Array) -> jax.Array:
  """x [..., D] @ the head w [D, V] -> fp32 logits [..., V].

  In fp32 even for bf16 models (log-prob arithmetic needs it); with 16-bit matmul
  inputs (`ModelConfig.matmul_dtype`) through `dense.matmul`, accumulated in fp32."""
  low = config.low_precision_matmul
  if low:
    return dense.matmul(x, w, dense.MATMUL_DTYPES[low])
  return jnp.einsum("...d,dv->...v", x, w.astype(x.dtype), preferred_element_type=jnp.float32)


def init(config: ModelConfig, seed: int = 0):
  """(graphdef, params): params a plain nested dict of arrays (optax/orbax friendly)."""
  graphdef, state = nnx.split(Transformer(config, nnx.Rngs(seed)))
  return graphdef, nnx.to_pure_dict(state)


def abstract_init(config: ModelConfig):
  """(graphdef, params as ShapeDtypeStructs): shapes without allocating weights."""
  graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(config, nnx.Rngs(0))))
  return graphdef, nnx.to_pure_dict(state)


def causal_mask(valid: jax.Array) -> jax.Array:
  """Self-attention mask [B, T, T] for a full forward: causal, padding keys masked.

  valid: bool [B, T]. Each query also sees itself so padded rows stay finite.
  """
  t = valid.shape[1]
  causal = jnp.tril(jnp.ones((t, t), bool))
  return (causal & valid[:, None, :]) | jnp.eye(t, dtype=bool)


def segment_mask(segments: jax.Array) -> jax.Array:
  """Self-attention mask [B, T, T] of packed rows: causal within each sequence.

  segments: int32 [B, T], k > 0 for the k-th sequence of a row, 0 for padding
  (training/packing.py). Each query also sees itself so padding rows stay finite.
  """
  t = segments.shape[1]
  causal = jnp.tril(jnp.ones((t, t), bool))
  same = (segments[:, :, None] == segments[:, None, :]) & (segments[:, None, :] > 0)
  return (causal & same) | jnp.eye(t, dtype=bool)


def positions_from_mask(valid: jax.Array) -> jax.Array:
  """RoPE positions [B, T] counting only valid tokens (left padding gets 0)."""
  return jnp.maximum(jnp.cumsum(valid.astype(jnp.int32), axis=1) - 1, 0)


def forward(graphdef, params, tokens: jax.Array, valid: jax.Array | None = None, *,
            head: bool = True) -> jax.Array:
  """Full (no cache) forward: tokens int32 [B, T], valid bool [B, T] -> logits fp32 [B, T, V]
  (head=False: the final hidden states [B, T, D])."""
  if valid is None:
    valid = jnp.ones(tokens.shape, bool)
  model = nnx.merge(graphdef, lora.freeze_base(params))
  out, _ = model(tokens, positions_from_mask(valid), causal_mask(valid), head=head)
  return out


def packed_forward(graphdef, params, tokens: jax.Array, segments: jax.Array,
                   positions: jax.Array, *, head: bool = True) -> jax.Array:
  """Full forward of packed rows (several sequences each, `segment_mask`):
  tokens, segments, positions int32 [B, T] -> logits fp32 [B, T, V] (head=False: the
  final hidden states [B, T, D])."""
  model = nnx.merge(graphdef, lora.freeze_base(params))
  out, _ = model(tokens, positions, segment_mask(segments), head=head)
  return out


def head(graphdef, params) -> tuple[ModelConfig, jax.Array]:
  """(config, the output projection [D, V]) of a model's params, for `head_logits`."""
  model = nnx.merge(graphdef, lora.freeze_base(params))
  return model.config, model.head_weight()
