"""Import Hugging Face Llama / Qwen2 checkpoints: config, safetensors weights, tokenizer.

Only safetensors are read (`model.safetensors` or a sharded
`model.safetensors.index.json`), never pickle (`pytorch_model.bin`). HF stores
linear weights as [out, in]; the model's kernels are [in, out], so every
`*_proj.weight` and `lm_head.weight` is transposed. RoPE needs no q/k
permutation: the model uses HF's rotate-half convention.

With a mesh, each tensor goes straight to its `param_shardings` placement via
`jax.make_array_from_callback`: each device's block is read from the (memory-
mapped) file with `safe_open(...).get_slice` and cast on its own, so the host
handles one device block at a time and no device ever holds a full copy of a
sharded weight, let alone of the model.

    model = load_hf_model("Qwen2.5-0.5B-Instruct")          # fp32
    logits = model(tokens)                                   # int32 [B, T] -> fp32 [B, T, V]
    text = model.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}])
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.models import sharding, transformer
from explore_rl.models.chat_tokenizer import ChatTokenizer, load_hf_tokenizer, read_json
from explore_rl.models.config import ModelConfig
from explore_rl.models.policy import Policy

MODEL_TYPES = ("llama", "qwen2")
ROPE_TYPES = ("default", "linear", "llama3")
# The keys `transformer.rope_frequencies` reads for each scaling; others are dropped so
# equal scalings give equal (hashable) configs.
_ROPE_KEYS = {"linear": ("factor",),
              "llama3": ("factor", "low_freq_factor", "high_freq_factor",
                         "original_max_position_embeddings")}
# Buffers some older checkpoints carry; the model recomputes them.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"


# -- config ----------------------------------------------------------------------------------

def rope_from_hf(config_json: Mapping[str, Any]) -> tuple[float, dict | None]:
  """(rope_theta, rope_scaling or None) from transformers-5 `rope_parameters` or the
  transformers-4 top-level `rope_theta` + `rope_scaling`."""
  params = config_json.get("rope_parameters")
  if params is None:
    theta = config_json.get("rope_theta", 10000.0)
    scaling = dict(config_json.get("rope_scaling") or {})
  else:
    if any(isinstance(v, dict) for v in params.values()):
      raise ValueError(f"per-layer-type rope_parameters are not supported: {params}")
    scaling = dict(params)
    theta = scaling.pop("rope_theta", config_json.get("rope_theta", 10000.0))
  kind = scaling.get("rope_type", scaling.get("type", "default"))
  if kind not in ROPE_TYPES:
    raise ValueError(f"unsupported rope type {kind!r}; valid: {', '.join(ROPE_TYPES)}")
  rotary = scaling.get("partial_rotary_factor", config_json.get("partial_rotary_factor", 1.0))
  if rotary != 1.0:
    raise ValueError(f"partial_rotary_factor={rotary} is not supported (only 1.0)")
  if kind == "default":
    return float(theta), None
  return float(theta), {"rope_type": kind, **{k: scaling[k] for k in _ROPE_KEYS[kind]}}


def config_from_hf(config_json: Mapping[str, Any], dtype=jnp.float32) -> ModelConfig:
  """A `ModelConfig` from a Llama or Qwen2 `config.json` dict; params and compute in `dtype`.

  Llama's `attention_bias` also gives o_proj a bias, which the model lacks: the
  loader accepts it only when it is all zeros. Qwen2 always has q/k/v biases.
  """
  model_type = config_json.get("model_type")
  if model_type not in MODEL_TYPES:
    raise ValueError(f"unsupported model_type {model_type!r}; valid: {', '.join(MODEL_TYPES)}")
  if config_json.get("hidden_act", "silu") != "silu":
    raise ValueError(f"hidden_act={config_json['hidden_act']!r} is not supported (only silu)")
  if config_json.get("mlp_bias", False):
    raise ValueError("mlp_bias=True is not supported")
  if config_json.get("use_sliding_window", False):
    raise ValueError("use_sliding_window=True is not supported (full attention only)")
  theta, scaling = rope_from_hf(config_json)
  name = jnp.dtype(dtype).name
  return ModelConfig(
      vocab_size=config_json["vocab_size"],
      hidden_size=config_json["hidden_size"],
      intermediate_size=config_json["intermediate_size"],
      num_hidden_layers=config_json["num_hidden_layers"],
      num_attention_heads=config_json["num_attention_heads"],
      num_key_value_heads=config_json.get("num_key_value_heads",
                                          config_json["num_attention_heads"]),
      head_dim=config_json.get("head_dim"),
      rope_theta=theta,
      rope_scaling=scaling,
      rms_norm_eps=config_json.get("rms_norm_eps", 1e-6),
      tie_word_embeddings=config_json.get("tie_word_embeddings", False),
      attention_bias=model_type == "qwen2" or config_json.get("attention_bias", False),
      max_position_embeddings=config_json.get("max_position_embeddings", 2048),
      dtype=name, param_dtype=name)


# -- weights ---------------------------------------------------------------------------------

def hf_param_map(config: ModelConfig) -> dict[str, tuple[tuple, bool]]:
  """HF tensor name -> (path in the params dict, transposed?), in HF's order."""
  out = {"model.embed_tokens.weight": (("embed_tokens", "embedding"), False)}
  for i in range(config.num_hidden_layers):
    pre, path = f"model.layers.{i}.", ("layers", i)
    out[pre + "input_layernorm.weight"] = (path + ("input_layernorm", "scale"), False)
    for n in ("q", "k", "v", "o"):
      out[pre + f"self_attn.{n}_proj.weight"] = (path + ("self_attn", f"{n}_proj", "kernel"), True)
      if config.attention_bias and n != "o":
        out[pre + f"self_attn.{n}_proj.bias"] = (path + ("self_attn", f"{n}_proj", "bias"), False)
    out[pre + "post_attention_layernorm.weight"] = (
        path + ("post_attention_layernorm", "scale"), False)
    for n in ("gate", "up", "down"):
      out[pre + f"mlp.{n}_proj.weight"] = (path + ("mlp", f"{n}_proj", "kernel"), True)
  out["model.norm.weight"] = (("norm", "scale"), False)
  if not config.tie_word_embeddings:
    out["lm_head.weight"] = (("lm_head", "kernel"), True)
  return out


def _tensor_files(path: str) -> dict[str, str]:
  """HF tensor name -> the safetensors file holding it."""
  from safetensors import safe_open
  index = read_json(os.path.join(path, SAFETENSORS_INDEX))
  if index is not None:
    return {k: os.path.join(path, f) for k, f in index["weight_map"].items()}
  single = os.path.join(path, SAFETENSORS)
  if not os.path.exists(single):
    listing = sorted(os.listdir(path)) if os.path.isdir(path) else "not a directory"
    raise FileNotFoundError(f"no {SAFETENSORS} or {SAFETENSORS_INDEX} in {path!r} ({listing}); "
                            "pickle checkpoints (pytorch_model.bin) are never loaded")
  with safe_open(single, framework="numpy") as f:
    return {k: single for k in f.keys()}


class ParamPlacer:
  """Fills a params dict of `transformer.init`'s layout one tensor at a time.

  `put(target, read)` places the tensor at `target` (a path into the params):
  `read(index)` returns the host block at `index` (a tuple of slices in the
  model's layout). With a mesh, each device's block of the `param_shardings`
  placement is read and cast on its own (`jax.make_array_from_callback`), so the
  host handles one block at a time and no device holds more than its own.
  """

  def __init__(self, config: ModelConfig, mesh=None):
    _, self.abstract = transformer.abstract_init(config)
    self.shardings = sharding.param_shardings(self.abstract, mesh) if mesh is not None else None
    self.params: dict = {}

  @staticmethod
  def _get(tree, path):
    for k in path:
      tree = tree[k]
    return tree

  def shape(self, target) -> tuple[int, ...]:
    return self._get(self.abstract, target).shape

  def put(self, target, read) -> None:
    shape = self.shape(target)
    if self.shardings is None:
      value = jax.device_put(read(tuple(slice(None) for _ in shape)))
    else:
      value = jax.make_array_from_callback(shape, self._get(self.shardings, target), read)
    tree = self.params
    for k in target[:-1]:
      tree = tree.setdefault(k, {})
    tree[target[-1]] = value


def is_ignorable(name: str, config: ModelConfig, read) -> bool:
  """Extra tensors that change nothing: recomputed buffers, a stored copy of the tied
  head, Llama's o_proj bias when it is all zeros."""
  if name.endswith(_IGNORED_SUFFIXES) or (name == "lm_head.weight" and config.tie_word_embeddings):
    return True
  if name.endswith("self_attn.o_proj.bias"):
    if np.any(read() != 0):
      raise ValueError(f"{name} is non-zero; the model has no o_proj bias")
    return True
  return False


def load_hf_params(path: str, model_config: ModelConfig, *, mesh=None, dtype=None) -> dict:
  """The params dict of `transformer.init`'s layout, read from `path`'s safetensors.

  dtype: parameter dtype (default `model_config.param_dtype`). With `mesh`, every
  tensor is placed with `sharding.param_shardings`, one device block at a time.
  """
  from safetensors import safe_open
  dtype = np.dtype(model_config.weight_dtype if dtype is None else dtype)
  placer = ParamPlacer(model_config, mesh)
  wanted = hf_param_map(model_config)
  files = _tensor_files(path)
  missing = sorted(set(wanted) - set(files))
  if missing:
    raise ValueError(f"{len(missing)} tensors missing from {path!r}, e.g. {missing[:3]}")
  by_file: dict[str, list[str]] = {}
  for name, file in files.items():
    by_file.setdefault(file, []).append(name)
  for file, names in sorted(by_file.items()):
    with safe_open(file, framework="numpy") as f:
      for name in names:
        if name not in wanted:
          if not is_ignorable(name, model_config, lambda: f.get_tensor(name)):
            raise ValueError(f"unexpected tensor {name!r} in {file}")
          continue
        target, transpose = wanted[name]
        expected = placer.shape(target)
        block = f.get_slice(name)
        shape = tuple(block.get_shape())
        if (shape[::-1] if transpose else shape) != expected:
          raise ValueError(f"{name} has shape {shape}, the config implies "
                           f"{expected[::-1] if transpose else expected}")

        def read(index, block=block, transpose=transpose):  # index: slices in our layout
          if transpose:
            return np.ascontiguousarray(block[index[::-1]].T).astype(dtype)
          return block[index].astype(dtype)

        placer.put(target, read)
  return placer.params


# -- entry points ----------------------------------------------------------------------------

_forward = jax.jit(transformer.forward, static_argnums=0)


@dataclasses.dataclass(frozen=True)
class HFModel:
  """An imported checkpoint: `model(tokens int32 [B, T], valid=None) -> fp32 logits [B, T, V]`.

  `valid` (bool [B, T]) marks real tokens of left-padded rows; RoPE positions
  count only those, so a padded row gives the logits of the row alone.
  """
  graphdef: Any
  params: dict
  config: ModelConfig
  tokenizer: ChatTokenizer | None

  @property
  def chat_template(self) -> str | None:
    return None if self.tokenizer is None else self.tokenizer.chat_template

  def __call__(self, tokens, valid=None) -> jax.Array:
    tokens = jnp.asarray(tokens, jnp.int32)
    return _forward(self.graphdef, self.params, tokens,
                    None if valid is None else jnp.asarray(valid, bool))


def is_hf_checkpoint(path: str) -> bool:
  """A Hugging Face checkpoint directory: config.json plus safetensors weights (a run's
  workdir also has a config.json, but its weights are Orbax checkpoints)."""
  return os.path.exists(os.path.join(path, "config.json")) and any(
      os.path.exists(os.path.join(path, f)) for f in (SAFETENSORS, SAFETENSORS_INDEX))


def read_hf_config(path: str, dtype=jnp.float32) -> ModelConfig:
  config_json = read_json(os.path.join(path, "config.json"))
  if config_json is None:
    raise FileNotFoundError(f"no config.json in {path!r}")
  return config_from_hf(config_json, dtype)


def load_hf_model(path: str, dtype=jnp.float32, *, mesh=None) -> HFModel:
  """Load a Llama/Qwen2 checkpoint directory (config.json + safetensors [+ tokenizer])."""
  config = read_hf_config(path, dtype)
  graphdef, _ = transformer.abstract_init(config)
  params = load_hf_params(path, config, mesh=mesh)
  return HFModel(graphdef, params, config, load_hf_tokenizer(path))


def load_hf_policy(path: str, mesh=None, *, dtype=jnp.float32,
                   chat_prompts: bool | None = None) -> Policy:
  """The checkpoint as a `Policy` (as `training.policy_loader.load_policy` returns for a run),
  so the trainer can start from an imported checkpoint. Its prompts go through the chat
  template when it has one, unless `chat_prompts` is False."""
  config = read_hf_config(path, dtype)
  tokenizer = load_hf_tokenizer(path, chat_prompts=chat_prompts)
  if tokenizer is None:
    raise FileNotFoundError(f"no tokenizer.json in {path!r}: the trainer needs the "
                            "checkpoint's tokenizer")
  if tokenizer.vocab_size > config.vocab_size:
    raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, the model only "
                     f"{config.vocab_size} embeddings")
  graphdef, _ = transformer.abstract_init(config)
  return Policy(tokenizer, config, graphdef, load_hf_params(path, config, mesh=mesh))
