"""Running out of memory mid-run: one message naming the step and the largest buffers; and
before the first step, an estimate of the step's peak memory that refuses a run which
cannot fit (`check_fits`: one line naming what to lower).

XLA reports a failed allocation as `RESOURCE_EXHAUSTED` (host or device memory, or the
process's address-space limit); NumPy and Python raise `MemoryError`. Either one inside
a training step becomes `OutOfMemory`, a `UserError`: the CLI prints its line and exits
2, and the checkpoints written before stay as they are.
"""
from __future__ import annotations

import logging

import jax

from explore_rl.errors import ConfigError, UserError
from explore_rl.models.transformer import cache_dtype

HOW_TO_LOWER = ("lower rollout.prompts_per_step, rollout.num_samples or max_response_len, "
                "or raise learner.micro_batches")


class OutOfMemory(UserError):
  """A step ran out of memory (the message names the step and the largest buffers)."""


def is_out_of_memory(error: BaseException) -> bool:
  return isinstance(error, MemoryError) or "RESOURCE_EXHAUSTED" in str(error)


def largest_buffers(num: int = 5) -> list[str]:
  """The `num` largest live JAX arrays, as "float32[64, 128] 0.0 MiB", largest first."""
  arrays = sorted(jax.live_arrays(), key=lambda a: a.nbytes, reverse=True)[:num]
  return [f"{a.dtype}{list(a.shape)} {a.nbytes / 2**20:.1f} MiB" for a in arrays]


def out_of_memory(step: int, error: BaseException) -> OutOfMemory:
  first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return OutOfMemory(f"out of memory at step {step} ({first}); largest live buffers: "
                     f"{', '.join(largest_buffers()) or 'none'}; {HOW_TO_LOWER}")


# -- before the first step: will it fit? ------------------------------------------------------

GiB = 2**30


def estimate_peak_bytes(config, model) -> dict[str, float]:
  """Bytes of an RL step's largest residents, by part (a `ModelConfig` `model`, the run's
  `config`), per device of one replica:

  params: the weights (and the KL reference's copy when `objective.kl_coef` > 0);
  optimizer: AdamW's two fp32 moments of the trained weights (only the adapters' with LoRA);
  grads: the fp32 gradient accumulator (the whole tree: a LoRA base's entries are zeros);
  activations: what one micro-batch's backward keeps: per block the inputs of its
    matmuls and the fp32 attention scores, or with `model.remat` one block's plus each
    block's input, and the fp32 logits, log-softmax and their gradient;
  kv_cache: the sampler's keys and values for every sample of the step plus its logits.
  The update and the sampler do not run at once: the peak is the persistent parts plus the
  larger of the last two. An estimate (XLA fuses and reuses buffers): within ~1.5x.
  """
  c, m = config, model
  width = {"float32": 4, "bfloat16": 2, "float16": 2}
  p_bytes, a_bytes = width[m.param_dtype], width[m.dtype]
  n = m.num_params()
  adapters = 0
  if m.lora_rank:
    d, f, h = m.hidden_size, m.intermediate_size, m.head_size
    q, kv = m.num_attention_heads * h, m.num_key_value_heads * h
    shapes = {"q_proj": (d, q), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (q, d),
              "gate_proj": (d, f), "up_proj": (d, f), "down_proj": (f, d)}
    adapters = m.num_hidden_layers * sum(m.lora_rank * sum(shapes[t]) for t in m.lora_targets)
  kl = bool(c.objective.get("kl_coef", 0.0))
  rows = c.rollout.prompts_per_step * c.rollout.num_samples
  micro = rows // (c.learner.mini_batches * c.learner.micro_batches)
  t = c.max_prompt_len + c.max_response_len
  d, f, v = m.hidden_size, m.intermediate_size, m.vocab_size
  heads, layers = m.num_attention_heads, m.num_hidden_layers
  per_block = micro * t * ((6 * d + 3 * f) * a_bytes + heads * t * 4 * 2)
  saved = micro * t * d * a_bytes * layers + per_block if m.remat else per_block * layers
  logits = micro * c.max_response_len * v * 4 * 3
  kv = 2 * layers * rows * m.num_key_value_heads * m.head_size * t * cache_dtype(m.dtype).itemsize
  return {"params": (n + adapters) * p_bytes * (2 if kl else 1),
          "optimizer": 2 * 4 * (adapters if m.lora_rank else n),
          "grads": 4 * (n + adapters),
          "activations": float(saved + logits),
          "kv_cache": float(kv + rows * v * 4 * 2)}


def memory_limit() -> tuple[float, str]:
  """(bytes, what): the first device's memory on an accelerator, else the host's memory
  this process may still use (available memory plus its own resident set, capped by a
  cgroup limit)."""
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and stats.get("bytes_limit"):
    return float(stats["bytes_limit"]), f"the {device.device_kind} has"
  info = {}
  with open("/proc/meminfo") as f:
    for line in f:
      key, value = line.split(":", 1)
      info[key] = int(value.split()[0]) * 1024
  with open("/proc/self/statm") as f:
    rss = int(f.read().split()[1]) * 4096
  limit = info.get("MemAvailable", info["MemTotal"]) + rss
  try:
    with open("/sys/fs/cgroup/memory.max") as f:
      cgroup = f.read().strip()
    if cgroup != "max":
      limit = min(limit, float(cgroup))
  except OSError:
    pass
  return float(limit), "this host has available"


_LOWER = {
    "params": "start from a smaller model, or bf16 weights "
              "(--config.model_overrides.param_dtype=bfloat16)",
    "optimizer": "train LoRA adapters instead of every weight (--config.model.lora.rank=16)",
    "grads": "train LoRA adapters (--config.model.lora.rank=16) or bf16 weights",
    "activations": "raise learner.micro_batches, set model.remat=True, or lower "
                   "max_response_len / max_prompt_len",
    "kv_cache": "lower rollout.prompts_per_step, rollout.num_samples or max_response_len",
}


def check_fits(config, model, limit: tuple[float, str] | None = None) -> dict[str, float]:
  """The estimate (`estimate_peak_bytes`, with its `peak`); a `ConfigError` (one line:
  the estimate, the limit, what to lower) when it exceeds `limit` (default
  `memory_limit()`)."""
  parts = estimate_peak_bytes(config, model)
  peak = (parts["params"] + parts["optimizer"] + parts["grads"]
          + max(parts["activations"], parts["kv_cache"]))
  available, what = limit or memory_limit()
  if peak > available:
    top = max(parts, key=parts.get)
    detail = ", ".join(f"{k} {x / GiB:.1f}" for k, x in parts.items())
    raise ConfigError(f"this run needs about {peak / GiB:.1f} GiB ({detail} GiB), more than "
                      f"the {available / GiB:.1f} GiB {what}: {_LOWER[top]}")
  logging.info("memory estimate: peak %.2f GiB of %.1f GiB %s (%s)", peak / GiB,
               available / GiB, what, ", ".join(f"{k} {x / GiB:.2f}" for k, x in parts.items()))
  return {**parts, "peak": peak}
