"""`explore-rl train|eval|sample`: the command line.

  explore-rl train  --config configs/<name>.py[:arg] --workdir DIR [--config.key=value ...]
  explore-rl eval   --workdir DIR [--num_prompts 128 --num_samples 16 --difficulty 0.5]
  explore-rl sample --workdir DIR [--num_prompts 4 --num_samples 4 --temperature 1.0]

Configs are ml_collections files with `get_config(arg=None)`; `--config.key=value`
overrides are type-checked against the config. `eval`/`sample` read the run's
config.json and model.json and its latest checkpoint.
"""
from __future__ import annotations

import json
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from explore_rl.registry import Registry

TRAINERS: Registry = Registry("trainer")
COMMANDS = ("train", "eval", "sample")

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (metrics, checkpoints).")
_NUM_PROMPTS = flags.DEFINE_integer("num_prompts", None, "eval/sample: held-out prompts.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "eval/sample: samples per prompt.")
_DIFFICULTY = flags.DEFINE_float("difficulty", None, "eval/sample: task difficulty.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "eval/sample: sampling temperature.")
_SEED = flags.DEFINE_integer("seed", 12345, "eval/sample: seed of the held-out prompts.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() first (multi-host GPU/TPU; the "
    "coordinator comes from the cluster environment, e.g. TPU pod metadata or SLURM).")


@TRAINERS.register("sft")
def _train_sft(config, workdir):
  from explore_rl.training.sft import train_sft
  return train_sft(config, workdir)


@TRAINERS.register("rl")
def _train_rl(config, workdir):
  from explore_rl.training.rl import train_rl
  return train_rl(config, workdir)


def _run_config(workdir: str) -> dict:
  with open(os.path.join(workdir, "config.json")) as f:
    return json.load(f)


def _held_out(workdir: str):
  """(task, run config, tokenizer, graphdef, params, problems) for eval/sample."""
  import jax  # noqa: F401  (initialise before loading)
  from explore_rl.tasks import get_task, sample_problems
  from explore_rl.training.workdir import load_policy
  run = _run_config(workdir)
  task = get_task(run["task"], **run.get("task_kwargs", {}))
  tokenizer, _, graphdef, params = load_policy(workdir)
  difficulty = run["difficulty"] if _DIFFICULTY.value is None else _DIFFICULTY.value
  problems = sample_problems(task, _SEED.value, _NUM_PROMPTS.value or 128, difficulty)
  return task, run, tokenizer, graphdef, params, problems


def _eval(workdir: str):
  import jax
  from explore_rl.eval.evaluate import evaluate
  from explore_rl.sampling.processors import SamplingConfig
  task, run, tokenizer, graphdef, params, problems = _held_out(workdir)
  metrics = evaluate(graphdef, params, task, tokenizer, problems,
                     num_samples=_NUM_SAMPLES.value or 16,
                     sampling=SamplingConfig(temperature=_TEMPERATURE.value,
                                             max_new_tokens=run["max_response_len"]),
                     prompt_len=run["max_prompt_len"], rng=jax.random.key(_SEED.value))
  print(json.dumps(metrics, indent=2))
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(metrics, f, indent=2)


def _sample(workdir: str):
  import jax
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.training.rollout import sample_and_score
  task, run, tokenizer, graphdef, params, problems = _held_out(workdir)
  n = _NUM_SAMPLES.value or 4
  out = sample_and_score(graphdef, params, task, tokenizer, problems[:_NUM_PROMPTS.value or 4],
                         num_samples=n, sampling=SamplingConfig(
                             temperature=_TEMPERATURE.value,
                             max_new_tokens=run["max_response_len"]),
                         prompt_len=run["max_prompt_len"], rng=jax.random.key(_SEED.value))
  for b, problem in enumerate(out.problems):
    print(f"\n{problem.prompt}")
    for j in range(n):
      i = b * n + j
      print(f"  [{out.statuses[i]:>9} r={out.rewards[b, j]:.2f}] {out.responses[i]!r}")


def main(argv):
  logging.set_verbosity(logging.WARNING)  # Orbax logs every file it closes at INFO
  commands = [a for a in argv[1:]]
  if len(commands) != 1 or commands[0] not in COMMANDS:
    raise app.UsageError(f"usage: explore-rl {{{'|'.join(COMMANDS)}}} --workdir DIR ... "
                         f"(got {commands or 'no command'})")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required")
  command = commands[0]
  if _DISTRIBUTED.value:
    import jax
    jax.distributed.initialize()
  if command == "train":
    config = _CONFIG.value
    if config is None:
      raise app.UsageError("train needs --config configs/<name>.py[:arg]")
    TRAINERS.get(config.get("trainer", "rl"))(config, _WORKDIR.value)
  elif command == "eval":
    _eval(_WORKDIR.value)
  else:
    _sample(_WORKDIR.value)


def run():
  app.run(main, argv=sys.argv)


if __name__ == "__main__":
  run()
