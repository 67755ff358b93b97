"""Model configuration and presets.

Field names mirror Hugging Face's Llama/Qwen2 `config.json`, so an imported
checkpoint's config maps onto `ModelConfig` one to one.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from explore_rl.errors import ConfigError
from explore_rl.models.lora import ALL_TARGETS
from explore_rl.registry import Registry

PRESETS: Registry = Registry("model preset")

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  vocab_size: int
  hidden_size: int
  intermediate_size: int
  num_hidden_layers: int
  num_attention_heads: int
  num_key_value_heads: int
  head_dim: int | None = None          # default hidden_size // num_attention_heads
  rope_theta: float = 10000.0
  # HF rope_scaling dict, e.g. {"rope_type": "llama3", "factor": 8.0,
  # "low_freq_factor": 1.0, "high_freq_factor": 4.0,
  # "original_max_position_embeddings": 8192} or {"rope_type": "linear", "factor": 2.0}.
  rope_scaling: Any = None
  rms_norm_eps: float = 1e-6
  tie_word_embeddings: bool = False
  attention_bias: bool = False         # q/k/v biases (Qwen2)
  max_position_embeddings: int = 2048
  dtype: str = "float32"               # compute dtype
  param_dtype: str = "float32"
  # Input dtype of the projections' and lm head's matmuls (fp32 accumulation); None: the
  # compute dtype. "bfloat16" on an fp32 model is mixed precision (models/dense.py).
  matmul_dtype: str | None = None
  # LoRA adapters on the `lora_targets` projections (models/lora.py); 0: none (full
  # fine-tuning). remat: recompute each block's activations in the backward pass
  # (jax.checkpoint per block): less memory for one more forward.
  lora_rank: int = 0
  lora_alpha: float = 16.0
  lora_targets: tuple[str, ...] = ALL_TARGETS
  remat: bool = False

  def __post_init__(self):
    # Stored as sorted (key, value) pairs: the config is a static jit argument
    # (inside the model's graphdef) and must hash.
    if isinstance(self.rope_scaling, dict):
      object.__setattr__(self, "rope_scaling", tuple(sorted(self.rope_scaling.items())))
    object.__setattr__(self, "lora_targets", tuple(self.lora_targets))  # JSON gives a list
    if self.lora_rank < 0:
      raise ConfigError(f"lora_rank={self.lora_rank} must be >= 0 (0: full fine-tuning)")
    unknown = sorted(set(self.lora_targets) - set(ALL_TARGETS))
    if unknown:
      raise ConfigError(f"lora_targets {unknown} are not projections; valid: {list(ALL_TARGETS)}")
    if self.num_attention_heads % self.num_key_value_heads:
      raise ConfigError(
          f"num_attention_heads={self.num_attention_heads} must be a multiple of "
          f"num_key_value_heads={self.num_key_value_heads}")
    for name in ("dtype", "param_dtype", "matmul_dtype"):
      value = getattr(self, name)
      if value not in _DTYPES and not (name == "matmul_dtype" and value is None):
        raise ConfigError(f"{name}={value!r}; valid: {sorted(_DTYPES)}")

  @property
  def head_size(self) -> int:
    return self.head_dim or self.hidden_size // self.num_attention_heads

  @property
  def rope_scaling_dict(self) -> dict:
    return dict(self.rope_scaling or ())

  @property
  def compute_dtype(self):
    return _DTYPES[self.dtype]

  @property
  def weight_dtype(self):
    return _DTYPES[self.param_dtype]

  @property
  def low_precision_matmul(self) -> str | None:
    """The 16-bit dtype the dense matmuls round their inputs to, or None for fp32."""
    name = self.matmul_dtype or self.dtype
    return None if name == "float32" else name

  def num_params(self) -> int:
    """Parameter count (embeddings included, counted once when tied)."""
    d, f, h = self.hidden_size, self.intermediate_size, self.head_size
    q, kv = self.num_attention_heads * h, self.num_key_value_heads * h
    attn = d * q + 2 * d * kv + q * d + (q + 2 * kv if self.attention_bias else 0)
    layer = attn + 3 * d * f + 2 * d
    emb = self.vocab_size * d * (1 if self.tie_word_embeddings else 2)
    return self.num_hidden_layers * layer + emb + d

  def replace(self, **kw) -> "ModelConfig":
    return dataclasses.replace(self, **kw)


def get_preset(name: str, **overrides) -> ModelConfig:
  """A preset by name, with field overrides (e.g. vocab_size from the tokenizer)."""
  fields = [f.name for f in dataclasses.fields(ModelConfig)]
  unknown = sorted(set(overrides) - set(fields))
  if unknown:
    raise ConfigError(f"unknown model field(s) {unknown} in the overrides; valid: {fields}")
  return PRESETS.get(name)().replace(**overrides)


@PRESETS.register("tiny")
def _tiny() -> ModelConfig:  # ~0.1M params: unit tests
  return ModelConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                     max_position_embeddings=256)


@PRESETS.register("small")
def _small() -> ModelConfig:  # ~3M params: the CPU demo
  return ModelConfig(vocab_size=128, hidden_size=192, intermediate_size=512,
                     num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2,
                     max_position_embeddings=512)


@PRESETS.register("base")
def _base() -> ModelConfig:  # ~110M params
  return ModelConfig(vocab_size=32000, hidden_size=768, intermediate_size=2048,
                     num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                     max_position_embeddings=2048)


@PRESETS.register("large")
def _large() -> ModelConfig:  # ~350M params: accelerator benchmarks
  return ModelConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816,
                     num_hidden_layers=24, num_attention_heads=16, num_key_value_heads=8,
                     max_position_embeddings=4096, dtype="bfloat16", param_dtype="bfloat16")


@PRESETS.register("llama3-1b")
def _llama3_1b() -> ModelConfig:  # Llama-3.2-1B shapes
  return ModelConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                     num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=64, rope_theta=500000.0, rms_norm_eps=1e-5,
                     rope_scaling={"rope_type": "llama3", "factor": 32.0,
                                   "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                   "original_max_position_embeddings": 8192},
                     tie_word_embeddings=True, max_position_embeddings=131072,
                     dtype="bfloat16", param_dtype="bfloat16")


@PRESETS.register("qwen2.5-0.5b")
def _qwen25_05b() -> ModelConfig:  # Qwen2.5-0.5B shapes
  return ModelConfig(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                     num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                     rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                     attention_bias=True, max_position_embeddings=32768,
                     dtype="bfloat16", param_dtype="bfloat16")
