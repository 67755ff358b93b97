"""Where a step's rollout comes from: drawn now (synchronous) or ahead of the learner.

`config.rollout.max_staleness` = k (docs/async.md):

k = 0, the synchronous loop (`Synchronous`): step s samples with the parameters of step s,
in the learner's thread, on the learner's devices; the code path of every run before.

k >= 1 (`Ahead`): rollout r, trained at step r, is drawn by policy version
v(r) = max(s0, r - k), where version v is the parameters after v updates and s0 the step
the run (re)started at. The sampler draws rollout s + k while the learner trains on
rollout s:

  learner (main thread)                      sampler (a thread; inline with P > 1 processes)
  step s: publish its parameters, version s --> draw rollout s + k with version s
          take rollout s                    <-- bounded queue (k), each tagged with its version
          train on it (π_old recomputed by the learner; `objective.is_correction` weights
          π_old/μ), log rollout/staleness_mean, _max = s - v(s) and mismatch/...

A fixed lag, not "the newest version": the run does not depend on thread timing (the
threaded sampler and the inline one write the same metrics, bit for bit), and the
processes of a multi-process run agree on it without exchanging anything.

Devices (`config.mesh.sampler_devices` = S): the sampler draws on S devices of its own
(the last S/P local devices of each of the P processes), the learner on the rest; S = 0
time-shares the learner's devices. Publishing a version copies the parameters (the update
donates its buffers): `jax.device_put` onto the sampler's shardings (device to device, no
host round trip), or `jnp.copy` when the devices are shared.

Stopping: `close` (the trainer calls it when its loop returns: the last step, SIGINT,
SIGTERM, an error) stops the sampler and drops the rollouts not yet trained on. The
checkpoint holds the learner's state and the curriculum as of the last trained rollout;
a resume redraws the dropped rollouts from the restored parameters (docs/async.md,
"What a resume guarantees").
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import queue
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp

from explore_rl.errors import ConfigError
from explore_rl.models import sharding
from explore_rl.sampling import Policies
from explore_rl.sampling.rollout import RolloutBatch, ScoredRollout
from explore_rl.training.dynamic_sampling import sample_groups
from explore_rl.training.step import step_keys

POLL_S = 0.1   # how often a blocked sampler or learner looks for a stop or an error


def max_staleness(config) -> int:
  """`config.rollout.max_staleness` (0 where the config predates it)."""
  return int(config.rollout.get("max_staleness", 0))


def split_devices(mesh_config) -> tuple[list, list]:
  """(learner devices, sampler devices) for `mesh.sampler_devices` = S: the last S/P local
  devices of each process sample; ([all], []) for S = 0. ConfigError (one line) for an S
  that leaves the learner no device or does not split over the processes."""
  devices, s = jax.devices(), int(mesh_config.get("sampler_devices", 0))
  if not s:
    return devices, []
  processes = jax.process_count()
  per_process = len(devices) // processes
  if s < 0 or s % processes or s // processes >= per_process:
    raise ConfigError(
        f"config.mesh.sampler_devices={s} must leave the learner at least one device "
        f"of each process and split evenly over the {processes} process(es) "
        f"({per_process} device(s) each): use 1 to {per_process - 1} per process, or 0 to "
        "time-share")
  learner, sampler = [], []
  for p in range(processes):
    own = [d for d in devices if d.process_index == p]
    learner += own[:-(s // processes)]
    sampler += own[-(s // processes):]
  return learner, sampler


def make_meshes(mesh_config):
  """(learner mesh from `config.mesh`'s axes over the learner's devices, sampler mesh over
  its own devices or None when they time-share)."""
  shape = {k: v for k, v in dict(mesh_config).items() if k != "sampler_devices"}
  learner, sampler = split_devices(mesh_config)
  return (sharding.make_mesh(shape, devices=learner),
          sharding.make_mesh({}, devices=sampler) if sampler else None)


def to_devices(params, mesh):
  """`params` (the learner's arrays) on `mesh` with the parameter shardings, device to device.

  One process: `jax.device_put` between the shardings. Several: JAX's CPU and GPU runtimes
  move a global array only within its device set across processes, so the learner's
  devices first replicate it (an all-gather among them) and each process copies slices of
  its local replica onto its own sampler devices."""
  target = sharding.param_shardings(params, mesh)
  if jax.process_count() == 1:
    return jax.device_put(params, target)
  full = _replicate_on(sharding.replicated(sharding.mesh_of(params)))(params)

  def move(x, shard):
    local = x.addressable_data(0)
    return jax.make_array_from_single_device_arrays(x.shape, shard, [
        jax.device_put(local[index], device)
        for device, index in shard.addressable_devices_indices_map(x.shape).items()])
  return jax.tree.map(move, full, target)


@functools.lru_cache(maxsize=None)
def _replicate_on(replicated):
  """The jitted all-gather onto `replicated`, made once per sharding: a fresh jit of a
  fresh lambda at every publish would compile again at every step."""
  return jax.jit(lambda p: p, out_shardings=replicated)


def make_rollouts(run, sampler_mesh=None):
  """The trainer's rollout source: `Synchronous` for max_staleness 0, else `Ahead`."""
  k = max_staleness(run.config)
  if k == 0:
    return Synchronous(run)
  return Ahead(run, k, sampler_mesh=sampler_mesh, threaded=jax.process_count() == 1)


class Synchronous:
  """Step s's rollout drawn now, by the learner's current parameters."""

  def __init__(self, run):
    self.run = run

  def next(self, step: int) -> tuple[ScoredRollout, dict]:
    return sample_groups(self.run, step_keys(self.run.config.seed, step)[0])

  def close(self):
    pass


@dataclasses.dataclass
class _Drawing:
  """What `sample_groups` reads of a trainer, for the sampler: the config, the components
  (with the sampler's own curriculum) and a published snapshot of the policies."""
  config: Any
  parts: Any
  snapshot: Policies

  def policies(self) -> Policies:
    return self.snapshot


@dataclasses.dataclass
class _Drawn:
  step: int
  version: int
  scored: ScoredRollout
  metrics: dict
  curriculum: dict     # the sampler's curriculum state after drawing it
  seconds: float       # the sampler's time drawing it


class Ahead:
  """Rollouts drawn up to k policy versions ahead of the learner (module docstring).

  `threaded`: a sampler thread fills a bounded queue while the learner trains (one
  process: JAX dispatch is asynchronous and XLA releases the GIL, so the two overlap);
  else each step draws inline, in the learner's thread, so that every process issues its
  collectives in one order (the same rollouts, no overlap)."""

  def __init__(self, run, k: int, *, sampler_mesh=None, threaded: bool = True):
    self.run, self.k, self.threaded = run, k, threaded
    self.sampler_mesh = sampler_mesh
    self.queue: queue.Queue[_Drawn] = queue.Queue(maxsize=k)
    self.versions: dict[int, Policies] = {}
    self.published = threading.Condition()
    self.stopping = threading.Event()
    self.error: BaseException | None = None
    self.thread = None
    self.start = self.next_draw = None
    self.parts = None

  # -- the learner's side --------------------------------------------------------------------
  def next(self, step: int) -> tuple[ScoredRollout, dict]:
    """Publishes the learner's parameters as version `step`, then returns rollout `step`
    (on the learner's devices) and its sampling metrics with its staleness."""
    if self.start is None:
      self._begin(step)
    self._publish(step)
    if not self.threaded:
      self._draw_inline(step)                 # rollout `step`, if not drawn yet
    item = self._take()
    if not self.threaded:
      self._draw_inline(step + self.k)        # the sampler's work ahead, in this thread
    assert item.step == step, (item.step, step)
    self.run.parts.curriculum.load_state_dict(item.curriculum)   # as of this rollout
    staleness = float(step - item.version)
    return self._on_learner(item.scored), {
        **item.metrics, "rollout/staleness_mean": staleness, "rollout/staleness_max": staleness,
        "time_draw": item.seconds}

  def close(self) -> int:
    """Stops the sampler (after the rollout it is drawing) and drops the rollouts not yet
    trained on; returns how many were dropped."""
    self.stopping.set()
    with self.published:
      self.published.notify_all()
    if self.thread is not None:
      self.thread.join()
    dropped = 0
    while not self.queue.empty():
      self.queue.get_nowait()
      dropped += 1
    self.versions.clear()
    return dropped

  def _begin(self, step: int):
    self.start = self.next_draw = step
    # The sampler advances its own curriculum; the learner's follows the rollouts it takes.
    self.parts = dataclasses.replace(self.run.parts,
                                     curriculum=copy.deepcopy(self.run.parts.curriculum))
    if self.threaded:
      self.thread = threading.Thread(target=self._sample_ahead, name="sampler", daemon=True)
      self.thread.start()

  def _publish(self, step: int):
    """Version `step` for the sampler, if a rollout is drawn with it (module docstring)."""
    if step != self.start and step + self.k >= self.run.config.total_steps:
      return
    place = (lambda p: jax.tree.map(jnp.copy, p)) if self.sampler_mesh is None else \
        (lambda p: to_devices(p, self.sampler_mesh))
    policies = self.run.policies()
    snapshot = dataclasses.replace(policies, **{
        field: policy.with_params(place(policy.params))
        for field in ("trained", "behaviour", "teacher")
        if (policy := getattr(policies, field)) is not None})
    with self.published:
      self.versions[step] = snapshot
      self.published.notify_all()

  def _take(self) -> _Drawn:
    while True:
      alive = self.threaded and self.thread.is_alive()
      try:
        return self.queue.get(timeout=POLL_S) if alive else self.queue.get_nowait()
      except queue.Empty:
        if self.error is not None:
          raise self.error
        if not alive:
          raise RuntimeError("the sampler stopped before drawing the next rollout") from None

  def _on_learner(self, scored: ScoredRollout) -> ScoredRollout:
    """`scored` with its device arrays on the learner's mesh (from its host copy) when the
    sampler has devices of its own."""
    if self.sampler_mesh is None:
      return scored
    like, host = self.run.state.params, scored.host
    batch = RolloutBatch(*(sharding.shard_batch(like, x)[0] for x in host[:-1]),
                         flops=jnp.asarray(host.flops))
    return dataclasses.replace(scored, batch=batch)

  # -- the sampler's side --------------------------------------------------------------------
  def _draw(self, r: int) -> _Drawn | None:
    """Rollout r, drawn by version max(start, r - k) once published; None when stopping."""
    version = max(self.start, r - self.k)
    with self.published:
      self.published.wait_for(lambda: version in self.versions or self.stopping.is_set())
      if self.stopping.is_set():
        return None
      for old in [v for v in self.versions if v < version]:
        del self.versions[old]
      snapshot = self.versions[version]
    t0 = time.perf_counter()
    scored, metrics = sample_groups(_Drawing(self.run.config, self.parts, snapshot),
                                    step_keys(self.run.config.seed, r)[0])
    scored = dataclasses.replace(scored, policy_version=version)
    return _Drawn(r, version, scored, metrics, copy.deepcopy(self.parts.curriculum.state_dict()),
                  time.perf_counter() - t0)

  def _sample_ahead(self):
    """The sampler thread: rollouts start..total-1 in order, each put on the queue."""
    try:
      for r in range(self.start, self.run.config.total_steps):
        item = self._draw(r)
        while item is not None and not self.stopping.is_set():
          try:
            self.queue.put(item, timeout=POLL_S)
            break
          except queue.Full:
            pass
        if item is None or self.stopping.is_set():
          return
    except BaseException as e:  # noqa: BLE001 - handed to the learner, which raises it
      self.error = e

  def _draw_inline(self, upto: int):
    """Inline: the rollouts not drawn yet up to `upto` (each by its version, published)."""
    while self.next_draw <= min(upto, self.run.config.total_steps - 1):
      self.queue.put_nowait(self._draw(self.next_draw))
      self.next_draw += 1
