"""GRPO on a uniform mixture of worlds: eight reasoning-gym datasets and our countdown.

Command:  explore-rl train --config configs/rg_mixture.py --workdir runs/rg_mixture
          (`:tiny` is the smoke-test variant: tiny preset, no SFT start, two steps)
Hardware: 2 CPU cores (the scorer children share them). Runtime: `:tiny` 136 s in
tests/training/test_configs_smoke.py on a busy machine (load average 11-17 on the 2
cores; most of it compiling for 512-character prompts, the held-out evaluation of each
of the nine families, and starting the scoring pool). The full config (small model,
from scratch): not run.
Expected: from scratch (init_from="") the rewards are 0 (an untrained model writes no
<answer> tags, so no answer reaches a scorer): start from an SFT prior over the same
mixture (`trainer="sft"` with this curriculum and curriculum_kwargs; the SFT trainer
draws each problem's demonstrations from its own family). Measured world-sampling
arms (one family vs this uniform mixture vs the adaptive `weighting="learnability"`, tiny
model, from such a prior): experiments/world_sampling.py and results/world_sampling/.
curriculum_kwargs.weighting="learnability" makes this mixture adaptive; inner="adaptive"
tracks each family's difficulty.
The RL trainer logs per-family `<family>/train_groups`, `<family>/train_pass@1`, held-out
`<family>/pass@k`, and the scoring pool's `sandbox_*` counts (calls, ok, timeout, error).

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
