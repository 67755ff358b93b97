"""GRPO on a uniform mixture of worlds: eight reasoning-gym datasets and our countdown.

Command:  explore-rl train --config configs/rg_mixture.py --workdir runs/rg_mixture
          (`:tiny` is the smoke-test variant: tiny preset, no SFT start, two steps)
Hardware: 2 CPU cores (the scorer children share them). Runtime: not measured yet: the RL
trainer scores a problem with its own family (`explore_rl.tasks.task_of`) once it takes
`curriculum="mixture"`; until then it refuses this config.
Expected: not measured yet. This config is the uniform arm of experiments/world_sampling.py
(issue 19); set curriculum_kwargs.inner="adaptive" for per-family difficulty tracking.

Every problem carries its family ("countdown", "reasoning_gym:chain_sum", ...); the
mixture curriculum draws family f with probability tasks[f] / sum(tasks) and builds each
family's task with task_kwargs[f]. The reasoning-gym families were chosen for short,
ASCII prompts (the character tokenizer) and short answers; each is scored by its own
scorer in the sandboxed pool (explore_rl/sandbox). `task`/`task_kwargs` name the family
that problems without a family (none here) are scored with.
"""
import ml_collections

from explore_rl.training.rl_config import rl_config

REASONING_GYM = ("countdown", "basic_arithmetic", "chain_sum", "products", "spell_backward",
                 "letter_counting", "leg_counting", "word_sorting")


def get_config(arg=None):
  c = rl_config(arg)
  c.task = "reasoning_gym"
  c.task_kwargs = ml_collections.ConfigDict(dict(dataset="countdown", max_prompt_chars=511))
  c.curriculum = "mixture"
  families = ["countdown"] + [f"reasoning_gym:{name}" for name in REASONING_GYM]
  c.curriculum_kwargs = ml_collections.ConfigDict(dict(
      tasks={f: 1.0 for f in families},
      inner="uniform",
      task_kwargs={f: {"max_prompt_chars": 511} for f in families if ":" in f}))
  c.difficulty = 0.0
  c.max_prompt_len = 512
  c.max_response_len = 80                 # word_sorting answers run to ~60 characters
  c.model_overrides = ml_collections.ConfigDict(dict(max_position_embeddings=1024))
  c.init_from = ""                        # SFT over a mixture: see the README's worlds section
  c.objective.advantage = "grpo"
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  return c
