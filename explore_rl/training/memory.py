"""Running out of memory mid-run: one message naming the step and the largest buffers.

XLA reports a failed allocation as `RESOURCE_EXHAUSTED` (host or device memory, or the
process's address-space limit); NumPy and Python raise `MemoryError`. Either one inside
a training step becomes `OutOfMemory`, a `UserError`: the CLI prints its line and exits
2, and the checkpoints written before stay as they are.
"""
from __future__ import annotations

import jax

from explore_rl.errors import UserError

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
