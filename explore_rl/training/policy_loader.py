"""Policies loaded from run directories and model names, and the run-directory files they
come from: model.json, checkpoints/ and, for a run started from a Hugging Face checkpoint or
a GGUF file, its tokenizer files (locking and config checks: run_dir.py).

`load_policy(workdir)` rebuilds the model of any run (SFT or RL) from its
model.json and latest checkpoint; RL configs start from an SFT run this way.
`load_initial_policy(path)` also accepts a Hugging Face checkpoint directory, a GGUF file
and a packaged model name (`models.model_names`).
"""
from __future__ import annotations

import json
import os
import shutil

import jax
import ml_collections

from explore_rl.models import gguf_import, hf_import, lora, model_names, sharding, transformer
from explore_rl.models.hf_export import TOKENIZER_FILES
from explore_rl.errors import UserError
from explore_rl.models.config import ModelConfig, get_preset
from explore_rl.models.policy import Policy
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.training.memory import check_fits
from explore_rl.training.state import init_state, make_optimizer


def checkpoint_dir(workdir: str) -> str:
  return os.path.join(workdir, "checkpoints")


def read_model_config(workdir: str) -> ModelConfig:
  path = os.path.join(workdir, "model.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory (no model.json): check the path, or "
                    "train it first (explore-rl train --config configs/<name>.py --workdir DIR)")
  with open(path) as f:
    return ModelConfig(**json.load(f))


def model_preset(config) -> str:
  """`config.model.preset` (`config.model` itself in configs written before it was a dict)."""
  return config.model if isinstance(config.model, str) else config.model.preset


def training_fields(config) -> dict:
  """The ModelConfig fields `config.model` sets on any starting model: LoRA adapters
  (`lora.rank`, `lora.alpha`, `lora.targets`, comma-separated) and `remat`."""
  m = config.model
  if isinstance(m, str):
    return {}
  targets = m.lora.targets
  return dict(lora_rank=int(m.lora.rank), lora_alpha=float(m.lora.alpha), remat=bool(m.remat),
              lora_targets=tuple(t.strip() for t in targets.split(",") if t.strip())
              if isinstance(targets, str) else tuple(targets))


def fresh_policy(config, mesh) -> Policy:
  """A new char-level model, params sharded on `mesh`: preset `config.model.preset` with
  `config.model_overrides`, seeded by `config.seed`. The weights are drawn in fp32 and
  rounded to `param_dtype`: a seed gives the same model at every precision."""
  tokenizer = CharTokenizer()
  model_config = get_preset(model_preset(config), vocab_size=tokenizer.vocab_size,
                            **config.model_overrides)
  _, params = transformer.init(model_config.replace(param_dtype="float32"), seed=config.seed)
  graphdef, _ = transformer.abstract_init(model_config)
  params = jax.tree.map(lambda x: x.astype(model_config.weight_dtype), params)
  return Policy(tokenizer, model_config, graphdef, sharding.shard_params(params, mesh))


def state_target(params, seed: int = 0):
  """A TrainState-shaped target (abstract optimizer state included) for restoring."""
  return jax.eval_shape(lambda p: init_state(p, make_optimizer(learning_rate=1.0), seed), params)


def _tokenizer(workdir: str):
  """A run's tokenizer: the checkpoint's own when the run copied one, else characters."""
  if os.path.exists(os.path.join(workdir, "tokenizer.json")):
    with open(os.path.join(workdir, "config.json")) as f:
      # Prompts through the chat template as the run had them (unset: when there is one).
      chat_prompts = json.load(f).get("hf", {}).get("chat_prompts")
    return hf_import.load_hf_tokenizer(workdir, chat_prompts=chat_prompts)
  return CharTokenizer()


def copy_tokenizer_files(src: str, workdir: str):
  """Keep a non-character tokenizer with the run, so eval/sample/resume find it: the
  files of a run or HF directory, or those a GGUF file's metadata describes."""
  source = model_names.resolve(src)
  if source.kind == "gguf":
    gguf_import.load_gguf_tokenizer(source.path).save(workdir)
    return
  src = source.path
  for name in TOKENIZER_FILES:
    if os.path.exists(os.path.join(src, name)):
      os.makedirs(workdir, exist_ok=True)
      shutil.copy(os.path.join(src, name), os.path.join(workdir, name))


def load_initial_policy(path: str, mesh=None, hf_kwargs=None) -> Policy:
  """Like `load_policy`, for any model name `models.model_names.resolve` accepts: a run's
  workdir, a Hugging Face checkpoint directory, a GGUF file or a packaged model."""
  source = model_names.resolve(path)
  if source.kind == "hf":
    return hf_import.load_hf_policy(source.path, mesh, **dict(hf_kwargs or {}))
  if source.kind == "gguf":
    return gguf_import.load_gguf_policy(source.path, mesh, **dict(hf_kwargs or {}))
  return load_policy(source.path, mesh)


# ModelConfig fields that set how the model computes, not its parameters: a policy loaded
# from `init_from` takes them from `config.model_overrides` too (the others are the
# checkpoint's own).
COMPUTE_FIELDS = ("matmul_dtype",)


def initial_policy(config, mesh, path: str | None = None) -> Policy:
  """A run's starting policy: loaded from `path` (default `config.init_from`; a run's
  workdir or a HF checkpoint), or a fresh model (`fresh_policy`) when the path is empty;
  then set up for `config` (`adapt_policy`)."""
  path = config.init_from if path is None else path
  policy = load_initial_policy(path, mesh, config.get("hf")) if path else \
      fresh_policy(config, mesh)
  return adapt_policy(policy, config)


def adapt_policy(policy: Policy, config) -> Policy:
  """`policy` as `config`'s run computes and trains it: `config.model_overrides`'
  COMPUTE_FIELDS (a loaded policy's own config lacks them; a fresh one already has every
  override, so they change nothing there), then `config.model`'s LoRA adapters (fresh:
  the adapted model equals the base) and remat (`training_fields`). The parameters are
  shared, not copied. An RL run whose step cannot fit in memory is refused here, before
  any work (`memory.check_fits`)."""
  compute = {k: v for k, v in config.model_overrides.items() if k in COMPUTE_FIELDS}
  fields = {**compute, **training_fields(config)}
  if "rollout" in config:
    check_fits(config, policy.config.replace(**fields))
  if all(getattr(policy.config, k) == v for k, v in fields.items()):
    return policy
  model_config = policy.config.replace(**fields)
  graphdef, abstract = transformer.abstract_init(model_config)
  params = lora.add_adapters(policy.params, abstract) if model_config.lora_rank and \
      not lora.has_adapters(policy.params) else policy.params
  return Policy(policy.tokenizer, model_config, graphdef, params)


def load_policy(workdir: str, mesh=None) -> Policy:
  """The policy of a run's latest checkpoint (SFT or RL)."""
  model_config = read_model_config(workdir)
  graphdef, abstract = transformer.abstract_init(model_config)
  target = state_target(abstract)
  if mesh is not None:
    shardings = sharding.param_shardings(abstract, mesh)
    target = target._replace(params=jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), target.params,
        shardings))
  ckpt = Checkpointer(checkpoint_dir(workdir))
  if ckpt.latest_step() is None:
    ckpt.close()
    raise UserError(f"{workdir!r} has no checkpoint yet: let its run reach its first "
                    "checkpoint (or finish), then try again")
  state, _ = ckpt.restore(target)
  ckpt.close()
  params = state.params
  if model_config.lora_rank:  # the checkpoint holds the adapters; the base is init_from's
    with open(os.path.join(workdir, "config.json")) as f:
      run_config = ml_collections.ConfigDict(json.load(f))
    base = initial_policy(run_config, mesh)
    params = lora.fill_base(lora.drop_base(params), base.params)
  return Policy(_tokenizer(workdir), model_config, graphdef, params)
