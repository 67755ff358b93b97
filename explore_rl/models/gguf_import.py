"""Import llama.cpp GGUF files (Llama / Qwen2): config and tokenizer from the metadata,
weights dequantised to the model's layout.

The file is memory-mapped and read with `gguf` (llama.cpp's own Python reader);
nothing in it is executed (the chat template is rendered in jinja's sandbox).
The metadata becomes a Hugging Face `config.json` dict, so `hf_import.config_from_hf`
checks it as it checks a checkpoint's; GGUF names map onto HF names, so
`hf_import.hf_param_map` gives each tensor's place and transposition.

- Tensor types: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
  dequantised with `gguf.quants.dequantize` (blocks run along a row, so rows
  dequantise independently).
- GGUF lists a tensor's fastest dimension first: `blk.0.attn_q.weight` of shape
  [in, out] is HF's [out, in]; the embeddings are [hidden, vocab]. No
  `output.weight` means tied embeddings.
- llama.cpp's converter permutes the rows of a Llama's `attn_q`/`attn_k` for its
  interleaved rope: per head, rows [2, head_dim/2] became [head_dim/2, 2]. The
  loader reads the rows in the inverse order, giving HF's rotate-half layout.
  Qwen2 files (rotate-half rope in llama.cpp too) are not permuted.
- With a mesh, each device's block is dequantised from the rows it needs and
  placed on its own (`hf_import.ParamPlacer`), as the safetensors import does.

Every check (metadata, tensor names, types and shapes, tokenizer) runs before any
weight is read: a bad file is one `UserError` naming the file and the fault.

Measured on SmolLM2-135M-Instruct (Q4_1, 98 MB) on a 2-core CPU: see docs/design.md.

    model = load_gguf_model("SmolLM2-135M-Instruct.Q4_1.gguf")   # fp32
    logits = model(tokens)                                        # int32 [B, T] -> [B, T, V]
"""
from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from explore_rl.errors import UserError
from explore_rl.models import transformer
from explore_rl.models.chat_tokenizer import ChatTokenizer
from explore_rl.models.config import ModelConfig
from explore_rl.models.gguf_tokenizer import build_tokenizer
from explore_rl.models.hf_import import (MODEL_TYPES, HFModel, ParamPlacer, config_from_hf,
                                         hf_param_map, is_ignorable)
from explore_rl.models.policy import Policy

TENSOR_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K",
                "Q6_K")
# GGUF tensor name (after "blk.{i}.") -> HF name (after "model.layers.{i}.").
_BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    **{f"attn_{g}.{kind}": f"self_attn.{h}_proj.{kind}" for kind in ("weight", "bias")
       for g, h in (("q", "q"), ("k", "k"), ("v", "v"), ("output", "o"))},
    **{f"ffn_{n}.weight": f"mlp.{n}_proj.weight" for n in ("gate", "up", "down")},
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
              "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}


def hf_name(name: str) -> str | None:
  """The HF tensor name of a GGUF one, or None for a name no Llama/Qwen2 model has."""
  if name in _TOP_NAMES:
    return _TOP_NAMES[name]
  parts = name.split(".", 2)
  if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in _BLOCK_NAMES:
    return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}"
  return None


class GGUFFile:
  """A memory-mapped GGUF file: `get(key)` metadata values, `tensors` by name.

  A file the reader cannot parse (bad magic, a header or tensor data past the end of
  the file, an unknown tensor type) raises `UserError` naming it.
  """

  def __init__(self, path: str):
    try:
      import gguf
    except ImportError:
      raise UserError(f"{path}: reading GGUF files needs the gguf package: pip install -c "
                      "requirements.lock gguf (`make` installs it)") from None
    if not os.path.isfile(path):
      raise UserError(f"{path}: no such GGUF file")
    self.path = path
    try:
      with open(path, "rb") as f:
        magic = f.read(4)
      if magic != b"GGUF":
        raise UserError(f"{path}: not a GGUF file (bad magic {magic!r}, expected b'GGUF')")
      self.reader = gguf.GGUFReader(path, "r")
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as e:
      detail = str(e).splitlines()[0] if str(e) else ""
      raise UserError(f"{path}: truncated or corrupted GGUF file ({os.path.getsize(path)} bytes; "
                      f"the reader failed: {type(e).__name__}: {detail})") from None
    self.tensors = {t.name: t for t in self.reader.tensors}

  def get(self, key: str) -> Any:
    field = self.reader.fields.get(key)
    if field is None:
      return None
    try:
      return field.contents()
    except UnicodeDecodeError:
      raise UserError(f"{self.path}: metadata {key} is not valid UTF-8 (corrupted file)") from None

  def require(self, key: str) -> Any:
    value = self.get(key)
    if value is None:
      raise UserError(f"{self.path}: metadata {key} is missing")
    return value


def hf_config_json(file: GGUFFile) -> dict:
  """The `config.json` dict of the model the metadata describes."""
  arch = file.require("general.architecture")
  if arch not in MODEL_TYPES:
    raise UserError(f"{file.path}: architecture {arch!r} is not supported; supported: "
                    f"{', '.join(MODEL_TYPES)}")
  key = lambda name: f"{arch}.{name}"  # noqa: E731
  heads = file.require(key("attention.head_count"))
  hidden = file.require(key("embedding_length"))
  head_dim = file.get(key("attention.key_length")) or hidden // heads
  rotary = file.get(key("rope.dimension_count"))
  if rotary not in (None, head_dim):
    raise UserError(f"{file.path}: rope over {rotary} of {head_dim} head dimensions (partial "
                    "rotary) is not supported")
  if "token_embd.weight" not in file.tensors:
    raise UserError(f"{file.path}: tensor token_embd.weight is missing")
  scaling = file.get(key("rope.scaling.type")) or "none"
  if scaling not in ("none", "linear"):
    raise UserError(f"{file.path}: rope scaling {scaling!r} is not supported; supported: "
                    "none, linear")
  bias = "blk.0.attn_q.bias" in file.tensors
  return {
      "model_type": arch,
      "vocab_size": int(file.tensors["token_embd.weight"].shape[1]),
      "hidden_size": hidden,
      "intermediate_size": file.require(key("feed_forward_length")),
      "num_hidden_layers": file.require(key("block_count")),
      "num_attention_heads": heads,
      "num_key_value_heads": file.get(key("attention.head_count_kv")) or heads,
      "head_dim": head_dim,
      "rope_theta": file.get(key("rope.freq_base")) or 10000.0,
      "rope_scaling": ({"rope_type": "linear", "factor": file.require(key("rope.scaling.factor"))}
                       if scaling == "linear" else None),
      "rms_norm_eps": file.require(key("attention.layer_norm_rms_epsilon")),
      "max_position_embeddings": file.get(key("context_length")) or 2048,
      "tie_word_embeddings": "output.weight" not in file.tensors,
      "attention_bias": arch == "llama" and bias,
  }


def read_config(file: GGUFFile, dtype=jnp.float32) -> ModelConfig:
  try:
    return config_from_hf(hf_config_json(file), dtype)
  except ValueError as e:
    raise UserError(f"{file.path}: {e}") from None


def _row_order(hf: str, rows: int, config: ModelConfig, arch: str) -> np.ndarray:
  """int [rows]: the file's row holding each of HF's rows. For a Llama's q/k (weight or
  bias), the inverse of llama.cpp's permutation: per head, HF's rows [2, head_dim/2]
  are [head_dim/2, 2] in the file."""
  heads = None
  if arch == "llama" and ".self_attn.q_proj." in hf:
    heads = config.num_attention_heads
  elif arch == "llama" and ".self_attn.k_proj." in hf:
    heads = config.num_key_value_heads
  order = np.arange(rows)
  if heads is None:
    return order
  return order.reshape(heads, config.head_size // 2, 2).transpose(0, 2, 1).reshape(-1)


def _check_tensors(file: GGUFFile, config: ModelConfig) -> dict[str, tuple[str, Any]]:
  """HF name -> (GGUF name, tensor) for every tensor the model needs, after checking
  names, types and shapes; raises UserError at the first fault."""
  import gguf
  wanted = hf_param_map(config)
  shapes = ParamPlacer(config)
  out = {}
  for name, tensor in file.tensors.items():
    hf = hf_name(name)
    kind = tensor.tensor_type.name
    try:
      extra = hf is not None and hf not in wanted and is_ignorable(
          hf, config, lambda t=tensor: gguf.quants.dequantize(t.data, t.tensor_type))
    except ValueError as e:   # a non-zero o_proj bias
      raise UserError(f"{file.path}: {e}") from None
    if extra:
      continue
    if hf not in wanted:
      raise UserError(f"{file.path}: unexpected tensor {name!r} (not part of a "
                      f"{file.get('general.architecture')} model this loader supports)")
    if kind not in TENSOR_TYPES:
      raise UserError(f"{file.path}: tensor {name} has type {kind}, which is not supported; "
                      f"supported: {', '.join(TENSOR_TYPES)}")
    target, transpose = wanted[hf]
    expected = shapes.shape(target)
    expected = expected[::-1] if transpose else expected   # HF's layout
    shape = tuple(int(d) for d in reversed(tensor.shape))
    if shape != expected:
      raise UserError(f"{file.path}: tensor {name} has shape {list(shape[::-1])} (GGUF order), "
                      f"the metadata implies {list(expected[::-1])}")
    out[hf] = (name, tensor)
  missing = sorted(set(wanted) - set(out))
  if missing:
    raise UserError(f"{file.path}: {len(missing)} tensors missing, e.g. {missing[:3]} (HF names)")
  return out


def _reader(tensor, order: np.ndarray, transpose: bool, dtype):
  """`read(index)` for `ParamPlacer.put`: dequantises only the rows (HF's first axis)
  that the block at `index` (slices in the model's layout) needs."""
  import gguf

  def read(index):
    index = index[::-1] if transpose else index
    if tensor.data.ndim == 1:   # norms and biases: whole, then indexed
      block = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)[order][index]
    else:
      rows = gguf.quants.dequantize(np.asarray(tensor.data[order[index[0]]]), tensor.tensor_type)
      block = rows[(slice(None),) + tuple(index[1:])]
    return np.ascontiguousarray(block.T if transpose else block).astype(dtype)

  return read


def _tokenizer(file: GGUFFile, chat_prompts: bool | None) -> ChatTokenizer:
  try:
    return build_tokenizer(file.get, file.path, chat_prompts=chat_prompts)
  except ValueError as e:
    raise UserError(str(e)) from None


def open_gguf(path: str, dtype=jnp.float32, *, chat_prompts: bool | None = False):
  """(file, config, tokenizer, tensors) after every check, before any weight is read."""
  file = GGUFFile(path)
  config = read_config(file, dtype)
  tensors = _check_tensors(file, config)
  tokenizer = _tokenizer(file, chat_prompts)
  if tokenizer.vocab_size > config.vocab_size:
    raise UserError(f"{path}: the tokenizer has {tokenizer.vocab_size} tokens, the embedding "
                    f"only {config.vocab_size} rows")
  return file, config, tokenizer, tensors


def load_gguf_params(file: GGUFFile, config: ModelConfig, tensors, *, mesh=None) -> dict:
  """The params dict of `transformer.init`'s layout, in `config.weight_dtype`."""
  arch = file.get("general.architecture")
  wanted = hf_param_map(config)
  placer = ParamPlacer(config, mesh)
  dtype = np.dtype(config.weight_dtype)
  for hf, (_, tensor) in tensors.items():
    target, transpose = wanted[hf]
    order = _row_order(hf, int(tensor.shape[-1]), config, arch)
    placer.put(target, _reader(tensor, order, transpose, dtype))
  return placer.params


def load_gguf_model(path: str, dtype=jnp.float32, *, mesh=None) -> HFModel:
  """A GGUF file as the model `hf_import.load_hf_model` returns (`model(tokens)` -> logits,
  `.tokenizer`, `.graphdef`, `.params`, `.config`)."""
  file, config, tokenizer, tensors = open_gguf(path, dtype)
  graphdef, _ = transformer.abstract_init(config)
  return HFModel(graphdef, load_gguf_params(file, config, tensors, mesh=mesh), config, tokenizer)


def load_gguf_policy(path: str, mesh=None, *, dtype=jnp.float32,
                     chat_prompts: bool | None = None) -> Policy:
  """The file as a `Policy` for the trainer and the samplers (as `load_hf_policy`; prompts
  through the chat template when the file has one, unless `chat_prompts` is False)."""
  file, config, tokenizer, tensors = open_gguf(path, dtype, chat_prompts=chat_prompts)
  graphdef, _ = transformer.abstract_init(config)
  return Policy(tokenizer, config, graphdef, load_gguf_params(file, config, tensors, mesh=mesh))


def load_gguf_tokenizer(path: str, *, chat_prompts: bool | None = False) -> ChatTokenizer:
  """Only the file's tokenizer (a run started from the file keeps it in its workdir)."""
  return _tokenizer(GGUFFile(path), chat_prompts)
