"""Result files of experiments run in parts: one JSON summary per finished unit of work.

An experiment that takes many CPU hours (a real model's pass@k map, its training runs)
writes each finished unit (a task measured, a run trained and evaluated) as its own
`DIR/<name>.json` the moment it finishes, and rebuilds its tables from whatever files
`DIR` holds. A unit whose file exists is never run again, so the experiment can be
stopped and resumed, split over days and machines, and the files committed as they come.
"""
from __future__ import annotations

import glob
import json
import os
import platform

from explore_rl.disk import atomic_write_text


def path_of(directory: str, name: str) -> str:
  return os.path.join(directory, f"{name}.json")


def exists(directory: str, name: str) -> bool:
  """Whether the unit `name` has finished (its summary is written)."""
  return os.path.exists(path_of(directory, name))


def write(directory: str, name: str, summary: dict) -> str:
  """DIR/<name>.json, written atomically (a reader never sees half a file)."""
  os.makedirs(directory, exist_ok=True)
  path = path_of(directory, name)
  atomic_write_text(path, json.dumps(summary, indent=1, sort_keys=True) + "\n",
                    what="a result summary")
  return path


def read_all(directory: str) -> dict[str, dict]:
  """{name: summary} of every DIR/*.json, by name."""
  out = {}
  for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
    with open(path) as f:
      out[os.path.basename(path)[:-len(".json")]] = json.load(f)
  return out


def machine() -> str:
  """Where a measurement ran: CPU model, cores available, load averages, JAX backend."""
  model = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo") as f:
      model = next((line.split(":", 1)[1].strip() for line in f
                    if line.startswith("model name")), model)
  except OSError:
    pass
  import jax
  device = jax.devices()[0]
  load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
  return (f"{model}, {len(os.sched_getaffinity(0))} cores, load {load}, "
          f"jax {jax.__version__} {device.platform}")

