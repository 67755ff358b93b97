"""`--model NAME` of the benchmarks: a packaged model (explore_rl/models/model_names.py)
loaded for JAX, and the same dequantised weights for transformers and TRL.

The GGUF file's quantised weights are dequantised once (gguf_import); the JAX side holds
them in `dtype`, and the torch side gets the same values through a Hugging Face checkpoint
written by `hf_export` (transformers' own GGUF loader marks the model as quantised, and
Trainer/TRL then refuse to train it). Both sides therefore run the same function in the
same dtype.
"""
from __future__ import annotations

import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np


def config(name: str, dtype: str = "float32"):
  """The packaged model's ModelConfig, read from its GGUF header (no weights)."""
  from explore_rl.models.gguf_import import GGUFFile, read_config
  from explore_rl.models.model_names import packaged_path
  return read_config(GGUFFile(packaged_path(name)), jnp.dtype(dtype))


def load_jax(name: str, dtype: str = "float32"):
  """(ModelConfig, graphdef, params) of the packaged model `name` in `dtype`."""
  from explore_rl.models.gguf_import import load_gguf_model
  from explore_rl.models.model_names import packaged_path
  model = load_gguf_model(packaged_path(name), jnp.dtype(dtype))
  return model.config, model.graphdef, model.params


def hf_checkpoint(config, params, directory: str) -> str:
  """`params` written as a Hugging Face Llama checkpoint in `directory` (fp32 safetensors)."""
  from explore_rl.models.hf_export import save_hf_checkpoint
  params32 = jax.tree.map(lambda a: np.asarray(a, np.float32), jax.device_get(params))
  save_hf_checkpoint(directory, config.replace(dtype="float32", param_dtype="float32"),
                     params32, model_type="llama")
  return directory


def hf_causal_lm(config, params, dtype: str = "float32"):
  """A `LlamaForCausalLM` holding `params`, in torch `dtype`, in eval mode."""
  import torch
  import transformers
  with tempfile.TemporaryDirectory() as d:
    model = transformers.LlamaForCausalLM.from_pretrained(hf_checkpoint(config, params, d),
                                                          dtype=torch.float32)
  return model.to(getattr(torch, dtype)).eval()


def hf_tokenizer(name: str):
  """The packaged model's tokenizer as transformers reads it from the GGUF file."""
  import transformers
  from explore_rl.models.model_names import packaged_path
  path = packaged_path(name)
  return transformers.AutoTokenizer.from_pretrained(os.path.dirname(path),
                                                    gguf_file=os.path.basename(path))
