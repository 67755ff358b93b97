"""Multi-process (multi-host) runs: JAX's multi-controller runtime, one process per host.

A pod runs the same program in P processes; `initialize` joins them (coordinator
address, P, this process's id; on TPU pods and under SLURM all three are detected),
after which `jax.devices()` is the global device list and a mesh spans every host.
On CPU the cross-process collectives are gloo's, so P processes on one machine (a
laptop, the test suite) run the same code as a pod.

What each process does (docs/design.md, "Multi-host runs"):
- every process computes the same host-side values (curriculum, seeds, problems) from
  the config, so only device values ever need communication;
- a jitted step's outputs are global arrays; `to_host` brings one to every process's
  host: an array whose shards are all local is copied, a replicated one is read from a
  local shard, and only a sharded one (a rollout's tokens) is gathered across processes;
- verifiers, the costly host work, are split: each process scores its `process_groups`
  (whole prompts, so a group's N samples are scored together) and the rewards and
  status codes are exchanged with `allgather_rows`;
- only process 0 writes metrics, TensorBoard and the run files (`is_primary`); every
  process takes part in an Orbax checkpoint save and restore.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None):
  """`jax.distributed.initialize` (None: detected from the cluster, e.g. TPU pod
  metadata or SLURM). The CPU backend's collectives are set to gloo, which works across
  processes (the default works within one only); accelerators are unaffected. Call
  before any other JAX work."""
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


def is_primary() -> bool:
  """Process 0: the one that writes metrics, TensorBoard and the run files."""
  return jax.process_index() == 0


def _leaf_to_host(x):
  if not isinstance(x, jax.Array) or x.is_fully_addressable:
    return np.asarray(jax.device_get(x))
  if x.is_fully_replicated:
    return np.asarray(x.addressable_data(0))
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def to_host(tree):
  """`jax.device_get` for global arrays: every leaf as a NumPy array on every process
  (replicated leaves read locally, sharded ones gathered with `process_allgather`)."""
  return jax.tree.map(_leaf_to_host, tree)


def process_groups(num_groups: int) -> range:
  """The prompt groups this process verifies: its contiguous 1/P of them, as the batch
  axis shards the prompt-major rows; all of them with one process, or when P does not
  divide the number of groups."""
  count, index = jax.process_count(), jax.process_index()
  if count == 1 or num_groups % count:
    return range(num_groups)
  share = num_groups // count
  return range(index * share, (index + 1) * share)


def allgather_rows(rows: np.ndarray) -> np.ndarray:
  """Every process's `rows` [n_i, ...], concatenated in process order on every process
  (a numeric host array: scores, status codes). A collective: every process calls it
  with the same trailing shape and dtype; with one process it returns `rows`."""
  if jax.process_count() == 1:
    return rows
  counts = np.asarray(multihost_utils.process_allgather(np.asarray([len(rows)])))[:, 0]
  padded = np.zeros((int(counts.max()), *rows.shape[1:]), rows.dtype)
  padded[:len(rows)] = rows
  gathered = np.asarray(multihost_utils.process_allgather(padded))       # [P, max, ...]
  return np.concatenate([gathered[k, :int(n)] for k, n in enumerate(counts)])
