"""GRPO on reasoning-gym's countdown: a world from the ecosystem, scored in the sandbox.

Command:  explore-rl train --config configs/rg_countdown.py:sft --workdir runs/rg_countdown/sft
          explore-rl train --config configs/rg_countdown.py --workdir runs/rg_countdown/grpo
          (`:tiny` is the smoke-test variant: tiny preset, no SFT start, two steps)
Hardware: 2 CPU cores (the scorer children share them). Runtime: `:tiny` about 1 minute on
a busy machine (most of it compiling for 512-character prompts and starting the scoring
pool, ~3 s). Full SFT + GRPO runs: not measured yet.
Expected: not measured yet. reasoning-gym's countdown (4-6 numbers at difficulty 0, target
100-500, every number used once) is harder than ours (configs/ of the `countdown` task):
ours and theirs side by side is the comparison the world-sampling study needs.

The world: task "reasoning_gym" with task_kwargs.dataset="countdown" (any of reasoning-gym's
datasets works the same way; task_kwargs.config holds its config fields). Prompts are the
dataset's question (~450 characters with its format instructions) plus the answer-format
line; answers go between <answer> and </answer>; rewards come from reasoning-gym's own
scorer in the sandboxed pool (explore_rl/sandbox: its countdown scorer evaluates the
answer with sympy). The character tokenizer reads these prompts: max_prompt_len is 512,
task_kwargs.max_prompt_chars keeps every prompt within it, and model_overrides widen the
model's positions to fit prompt + response.
"""
import ml_collections

from explore_rl.config_files import load_config
from explore_rl.training.rl_config import rl_config


def _world(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  c.task = "reasoning_gym"
  c.task_kwargs = ml_collections.ConfigDict(dict(dataset="countdown", max_prompt_chars=511))
  c.difficulty = 0.0                      # the curriculum's easiest level
  c.max_prompt_len = 512
  c.max_response_len = 48                 # "<answer>" + an expression + "</answer>"
  c.model_overrides = ml_collections.ConfigDict(dict(max_position_embeddings=1024))
  return c


def get_config(arg=None):
  if arg in ("sft", "sft_tiny"):          # the SFT prior on this world
    c = _world(load_config("sft:tiny" if arg == "sft_tiny" else "sft"))
    c.demos_per_problem = 2               # one reference answer per problem, plus mistakes
    return c
  c = _world(rl_config(arg))
  c.init_from = "" if arg == "tiny" else "runs/rg_countdown/sft"
  c.judge = "signature"                   # the normalised answer; use the embedding judge
  c.objective.advantage = "grpo"          # for strategies of free-form answers
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  return c
