"""Export a policy as a Hugging Face Llama / Qwen2 checkpoint (config.json + safetensors).

The inverse of `hf_import`: kernels are transposed back to HF's [out, in], dtypes
are kept, so import -> export -> import gives bit-identical params; LoRA adapters are
merged into their kernels (models/lora.py). Any config
exports as either architecture exactly: Llama's `attention_bias` also adds an
o_proj bias (written as zeros); Qwen2 always has q/k/v biases (written as zeros
when the model has none). `write_char_tokenizer` writes the procedural tasks'
character tokenizer as a `tokenizer.json` with the same ids, so a policy trained
here can be served (or re-imported with `load_hf_policy`) with its tokenizer.
"""
from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils

from explore_rl.models import lora
from explore_rl.models.config import ModelConfig
from explore_rl.models.hf_import import (MODEL_TYPES, SAFETENSORS, SAFETENSORS_INDEX,
                                         hf_param_map, load_hf_tokenizer)
from explore_rl.models.tokenizer import CharTokenizer

_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja")


def hf_config_dict(config: ModelConfig, model_type: str) -> dict:
  """`config.json` contents. RoPE is written in both the transformers-5 form
  (`rope_parameters`) and the older top-level `rope_theta`/`rope_scaling` that
  other engines read."""
  scaling = config.rope_scaling_dict or None
  out = {
      "architectures": [_ARCHITECTURES[model_type]],
      "model_type": model_type,
      "vocab_size": config.vocab_size,
      "hidden_size": config.hidden_size,
      "intermediate_size": config.intermediate_size,
      "num_hidden_layers": config.num_hidden_layers,
      "num_attention_heads": config.num_attention_heads,
      "num_key_value_heads": config.num_key_value_heads,
      "hidden_act": "silu",
      "max_position_embeddings": config.max_position_embeddings,
      "rms_norm_eps": config.rms_norm_eps,
      "rope_theta": config.rope_theta,
      "rope_scaling": scaling,
      "rope_parameters": {"rope_theta": config.rope_theta, "rope_type": "default",
                          **(scaling or {})},
      "tie_word_embeddings": config.tie_word_embeddings,
      "dtype": config.param_dtype,
      "use_cache": True,
  }
  if config.head_dim is not None:  # else both read hidden_size // num_attention_heads
    out["head_dim"] = config.head_dim
  if model_type == "llama":
    out.update(attention_bias=config.attention_bias, mlp_bias=False)
  else:
    out.update(use_sliding_window=False, sliding_window=None,
               max_window_layers=config.num_hidden_layers)
  return out


def _hf_tensors(config: ModelConfig, model_type: str):
  """HF name -> (path, transposed) plus the all-zero biases the architecture implies."""
  names = hf_param_map(config)
  zeros = {}
  for i in range(config.num_hidden_layers):
    pre = f"model.layers.{i}.self_attn."
    if model_type == "llama" and config.attention_bias:
      zeros[pre + "o_proj.bias"] = config.hidden_size
    if model_type == "qwen2" and not config.attention_bias:
      q, kv = (config.num_attention_heads * config.head_size,
               config.num_key_value_heads * config.head_size)
      zeros.update({pre + "q_proj.bias": q, pre + "k_proj.bias": kv, pre + "v_proj.bias": kv})
  return names, zeros


def save_hf_checkpoint(path: str, graphdef_or_config, params: dict, *,
                       model_type: str | None = None, tokenizer_dir: str | None = None,
                       max_shard_size: int | None = None) -> None:
  """Write `path/config.json` and `model.safetensors` (or shards + index) in HF's layout.

  model_type: "llama" or "qwen2"; default qwen2 when the model has q/k/v biases.
  tokenizer_dir: copy its tokenizer files and record its special-token ids.
  max_shard_size: bytes per safetensors file; above it, shards + `model.safetensors.index.json`.
  Tensors are fetched to the host one at a time (on multi-host meshes, call on
  every process; only process 0 writes).
  """
  from safetensors.numpy import save_file
  config = (graphdef_or_config if isinstance(graphdef_or_config, ModelConfig)
            else nnx.merge(graphdef_or_config, params).config)
  params = lora.merged(params, config)  # a LoRA model exports as its merged weights
  model_type = model_type or ("qwen2" if config.attention_bias else "llama")
  if model_type not in MODEL_TYPES:
    raise ValueError(f"unknown model_type {model_type!r}; valid: {', '.join(MODEL_TYPES)}")
  names, zeros = _hf_tensors(config, model_type)
  dtype = np.dtype(config.weight_dtype)

  def fetch(name) -> np.ndarray:
    if name in zeros:
      return np.zeros((zeros[name],), dtype)
    tree, (target, transpose) = params, names[name]
    for k in target:
      tree = tree[k]
    x = np.asarray(multihost_utils.process_allgather(tree, tiled=True)
                   if jax.process_count() > 1 else jax.device_get(tree))
    return np.ascontiguousarray(x.T) if transpose else x

  def nbytes(name) -> int:
    if name in zeros:
      return zeros[name] * dtype.itemsize
    tree = params
    for k in names[name][0]:
      tree = tree[k]
    return int(np.prod(tree.shape)) * tree.dtype.itemsize

  order = list(names) + list(zeros)
  shards: list[list[str]] = [[]]
  size = 0
  for name in order:  # greedy: start a new shard when this tensor would overflow
    if max_shard_size and shards[-1] and size + nbytes(name) > max_shard_size:
      shards.append([])
      size = 0
    shards[-1].append(name)
    size += nbytes(name)

  write = jax.process_index() == 0
  if write:
    os.makedirs(path, exist_ok=True)
  files = ([SAFETENSORS] if len(shards) == 1 else
           [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
  for file, shard in zip(files, shards):
    tensors = {name: fetch(name) for name in shard}
    if write:
      save_file(tensors, os.path.join(path, file), metadata={"format": "pt"})
  if not write:
    return
  if len(shards) > 1:
    index = {"metadata": {"total_size": sum(nbytes(n) for n in order)},
             "weight_map": {n: f for f, shard in zip(files, shards) for n in shard}}
    with open(os.path.join(path, SAFETENSORS_INDEX), "w") as f:
      json.dump(index, f, indent=2)

  config_json = hf_config_dict(config, model_type)
  if tokenizer_dir is not None:
    tokenizer = load_hf_tokenizer(tokenizer_dir)
    if tokenizer is None:
      raise FileNotFoundError(f"no tokenizer.json in {tokenizer_dir!r}")
    config_json.update(bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                       pad_token_id=tokenizer.pad_id)
    for name in TOKENIZER_FILES:
      src = os.path.join(tokenizer_dir, name)
      if os.path.exists(src) and os.path.abspath(tokenizer_dir) != os.path.abspath(path):
        shutil.copy(src, os.path.join(path, name))
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(config_json, f, indent=2, sort_keys=True)


def write_char_tokenizer(directory: str, tokenizer: CharTokenizer | None = None) -> None:
  """`tokenizer.json` + `tokenizer_config.json` equal to `CharTokenizer` (same ids).

  One token per character (a regex split into single characters, a word-level
  vocabulary), fused back on decode; PAD/BOS/EOS are special tokens.
  """
  from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
  tokenizer = tokenizer or CharTokenizer()
  vocab = {tok: i for i, tok in enumerate(tokenizer.specials)}
  vocab.update({c: i + len(tokenizer.specials) for i, c in enumerate(tokenizer.alphabet)})
  tok = Tokenizer(models.WordLevel(vocab, unk_token=None))
  tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
  tok.decoder = decoders.Fuse()
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                          for t in tokenizer.specials])
  os.makedirs(directory, exist_ok=True)
  tok.save(os.path.join(directory, "tokenizer.json"))
  with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
    special = tokenizer.specials
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast",
               "bos_token": special[tokenizer.bos_id], "eos_token": special[tokenizer.eos_id],
               "pad_token": special[tokenizer.pad_id], "clean_up_tokenization_spaces": False,
               "model_max_length": 1 << 20}, f, indent=2)
