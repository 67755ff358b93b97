"""Shared helpers for the benchmarks: timing, the measured matmul peak, memory, tables.

Benchmarks are scripts, not tests: they print numbers and assert nothing about
speed. Every timing here excludes compilation (a warm-up call runs first) and
waits for the device (`jax.block_until_ready`), and keeps the best of several
runs, because the machine may be shared with other jobs.
"""
from __future__ import annotations

import os
import resource
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp


def num_cores() -> int:
  """CPU cores this process may run on (what torch.set_num_threads should get)."""
  return len(os.sched_getaffinity(0))


def use_cpu_devices(n: int) -> None:
  """Run JAX on `n` XLA:CPU devices (the benchmarks' default: one per core), unless XLA_FLAGS
  already sets a host device count. Must run before JAX starts its backends (the first
  device query or computation). With one device per core and the batch sharded over a data
  mesh, each core runs its own rows: on the 2-core machine a decode of `small` at batch 64
  took 412 ms on two devices, 731-879 ms on one (benchmarks/README.md)."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" in flags:
    return
  os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
  if jax.default_backend() == "cpu" and len(jax.devices()) != n:
    # the flag is read once, when the backends start: something ran JAX before this call
    raise RuntimeError(f"asked for {n} XLA:CPU devices, but JAX had already started with "
                       f"{len(jax.devices())}: call use_cpu_devices before any JAX work")


def default_cpu_devices(model: str | None) -> int:
  """The benchmarks' XLA:CPU device count: one per core for the presets, one for a packaged
  model. At 135M parameters each device streams its own replica of the weights through the
  decode step, so two devices read twice the bytes: on the 2-core CPU of benchmarks/README.md
  one device decoded SmolLM2-135M at batch 1 and 8 in 4.8 and 9.8 s against 7.3 and 12.3 s
  on two (the decode step at batch 32: 124 against 133 ms). One device is also what
  `explore-rl train` runs on unless XLA_FLAGS asks for more."""
  return 1 if model else num_cores()


def load_average() -> str:
  return "/".join(f"{x:.2f}" for x in os.getloadavg())


def best_time(fn: Callable[[], object], *, repeats: int = 3, warmup: int = 1) -> float:
  """Best wall time (s) of `fn()` over `repeats` runs, after `warmup` untimed runs.

  The result is blocked on, so asynchronous dispatch is counted in full; the
  warm-up run absorbs compilation.
  """
  for _ in range(warmup):
    jax.block_until_ready(fn())
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    best = min(best, time.perf_counter() - t0)
  return best


def matmul_peak_flops(n: int = 2048, *, repeats: int = 5, dtype=jnp.float32) -> float:
  """Measured peak FLOP/s: a jitted [n, n] @ [n, n] matmul (2 n^3 FLOPs), best of `repeats`.

  Accumulated and returned in fp32, as the model's matmuls are: on the AMX CPU of
  benchmarks/README.md a bf16 dot with an fp32 result ran at ~1,150 GFLOP/s, one with a
  bf16 result at ~210, below fp32's ~260."""
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), dtype)
  b = jax.random.normal(kb, (n, n), dtype)
  matmul = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
  return 2.0 * n ** 3 / best_time(lambda: matmul(a, b), repeats=repeats)


def copy_bandwidth(nbytes: int = 64 << 20, *, repeats: int = 10, threads: int = 1) -> float:
  """Measured memory bandwidth (bytes/s): `threads` NumPy copies of `nbytes` each at once (NumPy
  releases the GIL while copying), counting read + write, best of `repeats`. One thread gave
  ~15-20 GB/s on the 2-core CPU of benchmarks/README.md; `threads=num_cores()` is the
  machine's aggregate, the floor for work spread over every core."""
  import concurrent.futures
  import numpy as np
  pairs = [(np.ones(nbytes // 4, np.float32), np.empty(nbytes // 4, np.float32))
           for _ in range(threads)]
  best = float("inf")
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    for _ in range(repeats):
      t0 = time.perf_counter()
      list(pool.map(lambda pair: np.copyto(pair[1], pair[0]), pairs))
      best = min(best, time.perf_counter() - t0)
  return 2 * nbytes * threads / best


def peak_memory_bytes() -> tuple[int, str]:
  """(peak bytes, what was measured).

  On an accelerator, the allocator's peak of the first device; on CPU (whose
  allocator keeps no statistics) the process's peak resident set size, which
  also counts Python, the libraries and anything allocated earlier in the run.
  """
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"]), f"{device.platform} peak_bytes_in_use"
  # Linux reports ru_maxrss in KiB.
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def planned_bytes(compiled: jax.stages.Compiled) -> int:
  """Argument + output + temporary buffer bytes XLA plans for one call (aliased counted once)."""
  m = compiled.memory_analysis()
  if m is None:
    return 0
  return (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
          - m.alias_size_in_bytes)


def mib(n: float) -> str:
  return f"{n / 2 ** 20:.1f} MiB"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]):
  cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
  widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
  line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths))
  print(line(cells[0]))
  print("  ".join("-" * w for w in widths))
  for r in cells[1:]:
    print(line(r))


def describe_machine() -> str:
  device = jax.devices()[0]
  return (f"jax {jax.__version__} on {device.platform} ({device.device_kind}), "
          f"{jax.device_count()} device(s), {num_cores()} cores, load average {load_average()}")


def hf_llama(config, **overrides):
  """A randomly initialised `LlamaForCausalLM` of `config`'s shape: the `config.json` our
  export writes (`hf_export.hf_config_dict`) with `overrides` (token ids, lengths)."""
  import transformers
  from explore_rl.models.hf_export import hf_config_dict
  hf_config = transformers.LlamaConfig.from_dict(hf_config_dict(config, "llama"), **overrides)
  return transformers.LlamaForCausalLM(hf_config)


def available(*modules: str) -> bool:
  """Whether every named module can be imported (the optional side-by-side baselines)."""
  import importlib.util
  return all(importlib.util.find_spec(m) is not None for m in modules)
