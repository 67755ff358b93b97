"""Device mesh and logical-axis sharding rules (data + FSDP + optional tensor parallel).

Parameters are matched by path to logical axes (`embed`, `heads`, `mlp`,
`vocab`); rules map logical axes to mesh axes. FSDP shards every weight's
`embed` dimension over the `fsdp` axis; tensor parallelism shards heads/mlp/vocab
over `tensor`. A dimension that a mesh axis does not divide stays replicated, so
any preset runs on any mesh. The batch is sharded over (`data`, `fsdp`).
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from explore_rl.errors import ConfigError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# Param path regex (dot-joined) -> logical axes of its dimensions.
PARAM_LOGICAL_AXES: Sequence[tuple[str, tuple]] = (
    (r"embed_tokens\.embedding$", ("vocab", "embed")),
    (r"lm_head\.kernel$", ("embed", "vocab")),
    (r"self_attn\.[qkv]_proj\.kernel$", ("embed", "heads")),
    (r"self_attn\.[qkv]_proj\.bias$", ("heads",)),
    (r"self_attn\.o_proj\.kernel$", ("heads", "embed")),
    (r"mlp\.(gate|up)_proj\.kernel$", ("embed", "mlp")),
    (r"mlp\.down_proj\.kernel$", ("mlp", "embed")),
)

DEFAULT_RULES: Mapping[str, str | None] = {
    "embed": "fsdp", "heads": "tensor", "mlp": "tensor", "vocab": "tensor",
}


def make_mesh(shape: Mapping[str, int] | None = None, devices=None) -> Mesh:
  """A ("data", "fsdp", "tensor") mesh; one size may be -1 (= the remaining devices).

  `shape` may also hold `num_devices`: use only the first n devices (0 = all), and
  `sampler_devices` = 0 (a config's `mesh` block; devices of a sampler of its own are
  split off by `training/async_rollouts.make_meshes` before a mesh is made).

  Axis types are Auto (GSPMD propagation): `jax.make_mesh` defaults to Explicit
  in current JAX, under which e.g. a matmul over a sharded contracting dim raises.
  """
  shape = dict({"data": 1, "fsdp": -1, "tensor": 1}, **(shape or {}))
  devices = devices if devices is not None else jax.devices()
  devices = devices[:shape.pop("num_devices", 0) or len(devices)]
  if shape.pop("sampler_devices", 0):
    raise ValueError("make_mesh got mesh.sampler_devices > 0: split the sampler's devices off "
                     "first (training/async_rollouts.make_meshes)")
  unknown = set(shape) - set(MESH_AXES)
  if unknown:
    raise ConfigError(f"unknown mesh axes {sorted(unknown)}; valid: {MESH_AXES}")
  sizes = [shape[a] for a in MESH_AXES]
  if sizes.count(-1) > 1:
    raise ConfigError(f"at most one mesh axis may be -1: {shape}")
  known = math.prod(s for s in sizes if s != -1)
  if len(devices) % known:
    raise ConfigError(f"mesh {shape} does not divide {len(devices)} devices")
  sizes = [len(devices) // known if s == -1 else s for s in sizes]
  if math.prod(sizes) != len(devices):
    raise ConfigError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                     f"have {len(devices)}")
  return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=(AxisType.Auto,) * 3,
                       devices=devices)


def _path_str(path) -> str:
  return ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)


def logical_axes(path: str, ndim: int) -> tuple:
  for pattern, axes in PARAM_LOGICAL_AXES:
    if re.search(pattern, path):
      if len(axes) != ndim:
        raise ValueError(f"param {path} has {ndim} dims, rule says {axes}")
      return axes
  return (None,) * ndim  # norms and anything unmatched: replicated


def param_spec(path: str, shape: Sequence[int], mesh: Mesh,
               rules: Mapping[str, str | None] = DEFAULT_RULES) -> P:
  spec = []
  for dim, axis in zip(shape, logical_axes(path, len(shape))):
    mesh_axis = rules.get(axis) if axis else None
    if mesh_axis and mesh.shape[mesh_axis] > 1 and dim % mesh.shape[mesh_axis] == 0:
      spec.append(mesh_axis)
    else:
      spec.append(None)
  return P(*spec)


def param_shardings(params, mesh: Mesh, rules: Mapping[str, str | None] = DEFAULT_RULES):
  """A pytree of NamedShardings matching `params` (arrays or ShapeDtypeStructs)."""
  return jax.tree_util.tree_map_with_path(
      lambda path, x: NamedSharding(mesh, param_spec(_path_str(path), x.shape, mesh, rules)),
      params)


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Leading (batch) dim over data x fsdp, the rest replicated."""
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def mesh_of(tree) -> Mesh | None:
  """The mesh `tree`'s arrays are laid out on (the first NamedSharding found), or None."""
  for x in jax.tree.leaves(tree):
    if isinstance(getattr(x, "sharding", None), NamedSharding):
      return x.sharding.mesh
  return None


def shard_batch(like, *arrays) -> tuple:
  """`arrays` (leading dim = batch) on the mesh of `like`'s arrays, the batch over the data
  and fsdp axes, so that a jitted computation of them and `like` (a policy's parameters)
  runs data-parallel. Given unsharded inputs and replicated parameters, XLA runs the whole
  batch on every device: one device per core of a 2-core CPU then decoded no faster than one
  device (benchmarks/README.md). Plain device arrays when `like` is on no mesh of several
  devices or the batch does not divide over it."""
  mesh = mesh_of(like)
  if mesh is None or mesh.size == 1 or arrays[0].shape[0] % local_batch_divisor(mesh):
    return tuple(jnp.asarray(a) for a in arrays)
  return tuple(jax.device_put(a, batch_sharding(mesh, np.ndim(a))) for a in arrays)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def place_on_mesh(tree, mesh: Mesh):
  """Replicate over the mesh every leaf not already laid out over all its devices by a
  NamedSharding.

  Optimizer counters, steps and PRNG keys are created on one device; a jitted
  step needs all its arguments on the same device set. On a one-device mesh they are on
  it already, but as single-device arrays, while the step returns them with a
  NamedSharding: the jit cache keys on the sharding, so the second step compiled the
  update again (every run on one device did, docs/testing.md).
  """
  full = set(mesh.devices.flat)
  return jax.tree.map(
      lambda x: x if isinstance(x.sharding, NamedSharding) and set(x.sharding.device_set) == full
      else jax.device_put(x, replicated(mesh)), tree)


def shard_params(params, mesh: Mesh, rules: Mapping[str, str | None] = DEFAULT_RULES):
  return jax.device_put(params, param_shardings(params, mesh, rules))


def bytes_per_device(tree) -> dict:
  """Bytes of `tree`'s arrays resident on each device (to check FSDP sharding)."""
  out: dict = {}
  for x in jax.tree.leaves(tree):
    for shard in x.addressable_shards:
      out[shard.device] = out.get(shard.device, 0) + shard.data.nbytes
  return out


def local_batch_divisor(mesh: Mesh) -> int:
  """The batch must be a multiple of this (data x fsdp) to shard evenly."""
  return int(np.prod([mesh.shape[a] for a in BATCH_AXES]))
