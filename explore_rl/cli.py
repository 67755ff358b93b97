"""`explore-rl train|eval|sample|generate`: the command line.

  explore-rl train    --config configs/<name>.py[:arg] --workdir DIR [--config.key=value ...]
  explore-rl eval     --workdir DIR [--num_prompts 128 --num_samples 16 --difficulty 0.5]
  explore-rl sample   --workdir DIR [--num_prompts 4 --num_samples 4 --temperature 1.0]
  explore-rl generate --init_from=MODEL --prompt TEXT [--max_new_tokens 128 --num_samples 1]

`explore-rl --help` lists the commands, `explore-rl <command> --help` a command's flags
(`cli_help`).

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

from explore_rl import cli_help, compile_cache, compile_time
from explore_rl.errors import UserError
from explore_rl.training.trainers import TRAINERS
COMMANDS = tuple(cli_help.COMMANDS)

# New keys are accepted by the parser and then allowed only inside hyper-parameter dicts
# (`_check_override_keys`); the config is locked again once checked.
_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file[:arg].",
                                          lock_config=False, accept_new_attributes=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (metrics, checkpoints).")
_NUM_PROMPTS = flags.DEFINE_integer("num_prompts", None, "eval/sample: held-out prompts.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", None, "Samples per prompt (eval: 16, "
                                     "sample: 4, generate: 1 when not given).")
_DIFFICULTY = flags.DEFINE_float("difficulty", None, "eval/sample: task difficulty.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Sampling temperature (0 is greedy).")
_SEED = flags.DEFINE_integer("seed", None, "eval/sample: seed of the held-out prompts "
                             "(default: the run's, i.e. the problems its trainer evaluates on); "
                             "generate: seed of the sampling (default 0).")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "generate: the model: a packaged name (smollm2-135m-instruct), "
    "gguf:PATH, hf:DIR or a run directory (what --config.init_from accepts).")
_PROMPT = flags.DEFINE_string("prompt", None, "generate: the user message, rendered through "
                              "the model's chat template when it has one.")
_MAX_NEW_TOKENS = flags.DEFINE_integer("max_new_tokens", 128,
                                       "generate: tokens to generate at most per sample.")
_ALLOW_METHOD_CHANGE = flags.DEFINE_bool(
    "allow_method_change", False, "train: resume a run directory with another method "
    "(objective, rollout, optimizer); by default a resume must keep the stored config.")
_COMPILE_CACHE = flags.DEFINE_string(
    "compile_cache", None, "Directory of XLA's persistent compilation cache, so a rerun of a "
    "config skips its compiles (default: $EXPLORE_RL_JAX_CACHE, else ~/.cache/explore_rl/jax); "
    "'off' turns it off.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "train: one process of a multi-process (multi-host) run: "
    "jax.distributed.initialize() first. On TPU pods and under SLURM the coordinator comes "
    "from the cluster; elsewhere give --coordinator_address, --num_processes, --process_id. "
    "See README.md, 'Running on many devices'.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "--distributed: host:port of process 0's coordinator "
    "(the same on every process).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None,
                                      "--distributed: number of processes of the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None,
                                   "--distributed: this process's index, 0..num_processes-1.")


def _check_override_keys(config) -> None:
  """Every --config.* override names a key of the config file, except keys inside a
  hyper-parameter dict (`*_kwargs`: task_kwargs, judge_kwargs, loss_kwargs, sampler_kwargs,
  ...), which the config files leave for the task, judge, loss or sampler to define, e.g.
  `--config.judge_kwargs.api_key_env=OPENAI_API_KEY`, and `model_overrides`, whose keys
  are `ModelConfig` fields checked when the model is built (`get_preset`), e.g.
  `--config.model_overrides.matmul_dtype=bfloat16`. A misspelt key is an error, never
  silently a new one. Locks `config` (no key can be added after this)."""
  from explore_rl.config_files import load_config, takes_new_keys
  flag = flags.FLAGS["config"]
  base = load_config(config_flags.get_config_filename(flag))
  for path in config_flags.get_override_values(flag):
    node, name = base, ""
    for part in path.split("."):
      if takes_new_keys(name):
        break          # inside a dict whose keys are its component's (or ModelConfig's)
      if not hasattr(node, "keys") or part not in node:
        raise UserError(f"unknown config key {path!r} in the --config.* overrides; see the "
                        "config file for its keys (new keys only inside a *_kwargs dict)")
      node, name = node[part], part
  config.lock()


def _run_config(workdir: str) -> dict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory (no config.json)")
  with open(path) as f:
    return json.load(f)


def _held_out(workdir: str):
  """(task, run config, policy, problems) for eval/sample: the run's own held-out set
  (`eval.held_out_problems`, as the trainer evaluates) unless --seed/--difficulty differ."""
  import jax  # noqa: F401  (initialise before loading)
  from explore_rl.eval.evaluate import held_out_problems
  from explore_rl.tasks import get_task
  from explore_rl.training.policy_loader import load_policy
  for flag in (_NUM_PROMPTS, _NUM_SAMPLES):
    if flag.value is not None and flag.value < 1:
      raise UserError(f"--{flag.name} must be >= 1, got {flag.value}")
  if not _TEMPERATURE.value >= 0:
    raise UserError(f"--temperature must be >= 0 (0 is greedy), got {_TEMPERATURE.value}")
  run = _run_config(workdir)
  task = get_task(run["task"], **run.get("task_kwargs", {}))
  policy = load_policy(workdir)
  difficulty = run["difficulty"] if _DIFFICULTY.value is None else _DIFFICULTY.value
  num_prompts = _NUM_PROMPTS.value or run.get("eval", {}).get("num_prompts", 128)
  seed = run.get("seed", 0) if _SEED.value is None else _SEED.value
  problems = held_out_problems(task, seed=seed, num_prompts=num_prompts, difficulty=difficulty)
  return task, run, policy, problems


def _eval(workdir: str):
  import jax
  from explore_rl.eval.evaluate import evaluate
  from explore_rl.sampling.processors import SamplingConfig
  task, run, policy, problems = _held_out(workdir)
  metrics = evaluate(policy, task, problems, num_samples=_NUM_SAMPLES.value or 16,
                     sampling=SamplingConfig(temperature=_TEMPERATURE.value,
                                             max_new_tokens=run["max_response_len"]),
                     prompt_len=run["max_prompt_len"], rng=jax.random.key(run.get("seed", 0)))
  print(json.dumps(metrics, indent=2))
  from explore_rl.disk import atomic_write_text
  atomic_write_text(os.path.join(workdir, "eval.json"), json.dumps(metrics, indent=2),
                    what="explore-rl eval")


def _sample(workdir: str):
  import jax
  from explore_rl.sampling import Policies
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.sampling.rollout import sample_and_score
  from explore_rl.sampling.samplers import IndependentSampler
  task, run, policy, problems = _held_out(workdir)
  n = _NUM_SAMPLES.value or 4
  sampler = IndependentSampler(sampling=SamplingConfig(temperature=_TEMPERATURE.value,
                                                       max_new_tokens=run["max_response_len"]),
                               prompt_len=run["max_prompt_len"])
  out = sample_and_score(sampler, Policies(policy), task, problems[:_NUM_PROMPTS.value or 4],
                         num_samples=n, rng=jax.random.key(run.get("seed", 0)))
  for b, problem in enumerate(out.problems):
    print(f"\n{problem.prompt}")
    for j in range(n):
      i = b * n + j
      print(f"  [{out.statuses[i]:>9} r={out.rewards[b, j]:.2f}] {out.responses[i]!r}")


def _generate():
  """Print `--num_samples` completions of `--prompt` by the `--init_from` model, drawn by the
  trainer's sampler (one prefill, a KV-cache decode that stops at the end-of-turn token)."""
  import jax
  import numpy as np
  from explore_rl.models.tokenizer import pad_left
  from explore_rl.sampling.generate import generate
  from explore_rl.sampling.processors import SamplingConfig
  from explore_rl.training.policy_loader import load_initial_policy
  if not _INIT_FROM.value or _PROMPT.value is None:
    raise UserError("generate needs --init_from=MODEL and --prompt TEXT (explore-rl generate "
                    "--help)")
  n = _NUM_SAMPLES.value or 1
  for name, value, low in (("num_samples", n, 1), ("max_new_tokens", _MAX_NEW_TOKENS.value, 1),
                           ("temperature", _TEMPERATURE.value, 0)):
    if not value >= low:
      raise UserError(f"--{name} must be >= {low}, got {value}")
  policy = load_initial_policy(_INIT_FROM.value)
  tokenizer = policy.tokenizer
  try:
    if getattr(tokenizer, "chat_template", None):
      ids = tokenizer.encode(tokenizer.apply_chat_template([{"role": "user",
                                                             "content": _PROMPT.value}]))
    else:                                  # a character-level run: the prompt as it is
      ids = tokenizer.encode(_PROMPT.value, bos=True)
  except ValueError as e:
    raise UserError(f"--prompt: {e}") from None
  tokens, valid = pad_left([ids], tokenizer.pad_id)
  out = generate(policy.graphdef, policy.params, tokens, valid,
                 jax.random.key(_SEED.value or 0), num_samples=n,
                 config=SamplingConfig(temperature=_TEMPERATURE.value,
                                       max_new_tokens=_MAX_NEW_TOKENS.value),
                 eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
  truncated = np.asarray(out.truncated)
  for j, row in enumerate(np.asarray(out.tokens)):
    print(f"--- sample {j + 1}/{n}" + (" (hit --max_new_tokens)" if truncated[j] else ""))
    print(tokenizer.decode(row), flush=True)


def _initialize_distributed(command: str):
  """Joins a multi-process run (`--distributed`); the coordinator flags need it."""
  given = [f.name for f in (_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID) if f.value is not None]
  if not _DISTRIBUTED.value:
    if given:
      raise UserError(f"--{', --'.join(given)} only apply with --distributed")
    return
  if command != "train":
    raise UserError(f"--distributed applies to train, not {command}")
  if _NUM_PROCESSES.value is not None and _PROCESS_ID.value is not None and \
      not 0 <= _PROCESS_ID.value < _NUM_PROCESSES.value:
    raise UserError(f"--process_id={_PROCESS_ID.value} is not in 0..{_NUM_PROCESSES.value - 1}")
  from explore_rl import distributed
  distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)


def main(argv):
  logging.set_verbosity(logging.WARNING)  # Orbax logs every file it closes at INFO
  commands = [a for a in argv[1:]]
  if len(commands) != 1 or commands[0] not in COMMANDS:
    raise app.UsageError(f"usage: explore-rl {{{'|'.join(COMMANDS)}}} --workdir DIR ... "
                         f"(got {commands or 'no command'})")
  command = commands[0]
  if not _WORKDIR.value and command != "generate":
    raise app.UsageError("--workdir is required")
  # Every executable: a run's ~60 small jits (0.05-0.3 s each) would cost a rerun ~5 s.
  compile_cache.enable(_COMPILE_CACHE.value, min_compile_secs=0.0)
  compile_time.start()
  _initialize_distributed(command)
  if command == "train":
    config = _CONFIG.value
    if config is None:
      raise app.UsageError("train needs --config configs/<name>.py[:arg]")
    try:
      trainer = config.get("trainer", "rl")
    except OSError as e:  # config_flags defers a load failure to the first access
      from explore_rl.config_files import config_names
      detail = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
      raise UserError(f"cannot load the --config file: {detail}; the configs in configs/: "
                      f"{', '.join(config_names())}") from None
    _check_override_keys(config)
    TRAINERS.get(trainer)(config, _WORKDIR.value, allow_method_change=_ALLOW_METHOD_CHANGE.value)
    print(compile_time.summary(), flush=True)   # a rerun with the cache: a fraction of it
  elif command == "eval":
    _eval(_WORKDIR.value)
  elif command == "generate":
    _generate()
  else:
    _sample(_WORKDIR.value)


def _parse_flags(argv):
  """absl's parsing, with every mistake in the command line as a one-line UserError:
  a bad flag value or --config override type, a config file that does not exist or does
  not load (an unknown --config key: `_check_override_keys`)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    raise UserError(str(e).strip().splitlines()[0]) from None
  except KeyError as e:   # ml_collections: a new key under a key that does not exist
    raise UserError(f"unknown config key {e} in the --config.* overrides; new keys only "
                    "directly inside a *_kwargs dict") from None
  except (OSError, ImportError, SyntaxError, TypeError, ValueError) as e:
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    raise UserError(f"--config: {lines[-1] if lines else type(e).__name__}") from None


def run():
  cli_help.handle(sys.argv)
  try:
    app.run(main, argv=sys.argv, flags_parser=_parse_flags)
  except UserError as e:
    print(f"explore-rl: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  run()
