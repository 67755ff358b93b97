"""LoRA adapters (Hu et al., arXiv 2106.09685): y = x W + (alpha / r) · (x A) B.

A model with `ModelConfig.lora_rank` r > 0 gives each target projection
(`lora_targets`, e.g. q_proj, down_proj) two more parameters next to its kernel,
`lora_a` [in, r] and `lora_b` [r, out]; B starts at zero, so the adapted model equals
the base at initialisation. Everything else is the frozen base:

- the forward pass reads the base under `stop_gradient` (`freeze_base`), so no base
  gradient is computed;
- the optimizer updates only the adapters (`param_labels`; training/state.py), whose
  moments are the only ones it keeps;
- a checkpoint holds the adapters (`drop_base`): the base is the run's `init_from`,
  loaded again on resume (`fill_base`);
- an export writes W + (alpha / r) A B (`merged`).

Parameter paths keep Hugging Face's names (`layers.3.self_attn.q_proj.kernel`), so
import and export need no other change.
"""
from __future__ import annotations

import zlib

import jax
import jax.numpy as jnp
from flax import nnx

ADAPTERS = ("lora_a", "lora_b")
ALL_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Top-level keys of a model's params (transformer.Transformer): a leaf below one of them
# that is not an adapter is a base weight.
_MODEL_KEYS = ("embed_tokens", "layers", "norm", "lm_head")


class LoRALinear(nnx.Linear):
  """nnx.Linear plus a rank-r update (alpha / r) · (x A) B; A ~ N(0, 1/in), B = 0."""

  def __init__(self, din: int, dout: int, *, rank: int, alpha: float, rngs: nnx.Rngs, **kw):
    super().__init__(din, dout, rngs=rngs, **kw)
    self.lora_a = nnx.Param(jax.random.normal(rngs.params(), (din, rank), self.param_dtype)
                            * (1.0 / din) ** 0.5)
    self.lora_b = nnx.Param(jnp.zeros((rank, dout), self.param_dtype))
    self.lora_scale = alpha / rank

  def __call__(self, x):
    a, b = self.lora_a.value.astype(self.dtype), self.lora_b.value.astype(self.dtype)
    return super().__call__(x) + ((x @ a) @ b) * jnp.asarray(self.lora_scale, self.dtype)


def _keys(path) -> list:
  return [getattr(k, "key", getattr(k, "idx", None)) for k in path]


def is_adapter(path) -> bool:
  return bool(path) and _keys(path)[-1] in ADAPTERS


def has_adapters(tree) -> bool:
  return any(is_adapter(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree))


def is_base(path) -> bool:
  """A model weight that is not an adapter (at any depth: params, a train state)."""
  return not is_adapter(path) and any(k in _MODEL_KEYS for k in _keys(path))


def freeze_base(params):
  """`params` with every base weight under stop_gradient (identity without adapters)."""
  if not has_adapters(params):
    return params
  return jax.tree_util.tree_map_with_path(
      lambda p, x: x if is_adapter(p) else jax.lax.stop_gradient(x), params)


def param_labels(params):
  """"train" for adapters, "frozen" for the base (all "train" without adapters)."""
  lora = has_adapters(params)
  return jax.tree_util.tree_map_with_path(
      lambda p, _: "frozen" if lora and not is_adapter(p) else "train", params)


def drop_base(tree):
  """`tree` (params, a train state) with its base weights as None, when it holds adapters:
  what a checkpoint of a LoRA run keeps."""
  if not has_adapters(tree):
    return tree
  return jax.tree_util.tree_map_with_path(lambda p, x: None if is_base(p) else x, tree)


def fill_base(restored, target):
  """`restored` (from `drop_base(target)`'s structure) with `target`'s base weights back."""
  if not has_adapters(target):
    return restored
  flat, treedef = jax.tree_util.tree_flatten_with_path(target)
  kept = iter(jax.tree.leaves(restored))
  return jax.tree.unflatten(treedef, [x if is_base(p) else next(kept) for p, x in flat])


def add_adapters(params, abstract):
  """The base `params` plus the adapters of the adapted model's `abstract` params
  (`transformer.abstract_init` of a config with lora_rank > 0), initialised as
  `LoRALinear` does from a fixed key: A ~ N(0, 1/in), B = 0."""
  key = jax.random.key(0)

  def build(path, spec, base=None):
    if not is_adapter(path):
      return base
    if _keys(path)[-1] == "lora_b":
      return jnp.zeros(spec.shape, spec.dtype)
    k = jax.random.fold_in(key, zlib.crc32(jax.tree_util.keystr(path).encode()) % 2**31)
    return (jax.random.normal(k, spec.shape, jnp.float32) * spec.shape[0] ** -0.5
            ).astype(spec.dtype)

  flat, treedef = jax.tree_util.tree_flatten_with_path(abstract)
  base = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_leaves_with_path(params)}
  return jax.tree.unflatten(treedef, [build(p, s, base.get(jax.tree_util.keystr(p)))
                                      for p, s in flat])


def merged(params, config):
  """The base params with W + (alpha / r) A B in every adapted kernel, adapters removed:
  the plain model of `config.replace(lora_rank=0)` (what an export writes)."""
  if not has_adapters(params):
    return params
  scale = config.lora_alpha / config.lora_rank

  def walk(node):
    if not isinstance(node, dict):
      return node
    if "lora_a" in node:
      out = {k: v for k, v in node.items() if k not in ADAPTERS}
      delta = jnp.asarray(node["lora_a"], jnp.float32) @ jnp.asarray(node["lora_b"], jnp.float32)
      out["kernel"] = (jnp.asarray(node["kernel"], jnp.float32) + scale * delta
                       ).astype(node["kernel"].dtype)
      return out
    return {k: walk(v) for k, v in node.items()}

  return walk(params)
