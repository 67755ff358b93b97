"""SFT warm start on the partition task's multi-strategy demonstrations.

Command:  explore-rl train --config configs/sft.py --workdir runs/sft
Hardware: 2 CPU cores. Runtime: 3.5 minutes (small preset, 400 steps, quiet machine).
Expected: (measured) held-out pass@1 0.40, pass@8 0.96, 2.25 distinct correct strategies
per prompt among 8 samples, entropy 0.28 nats/token: real but imperfect coverage of the
~5.5 strategies a problem has on average. `configs/sft.py:tiny` is the smoke-test
variant (tiny preset, a few steps).
"""
import ml_collections

from explore_rl.training.rl_config import model_settings


def get_config(arg=None):
  c = ml_collections.ConfigDict()
  c.trainer = "sft"
  c.seed = 0
  c.model = model_settings("small")
  c.model_overrides = ml_collections.ConfigDict()
  c.task = "partition"
  c.task_kwargs = ml_collections.ConfigDict()
  c.difficulty = 0.5
  c.max_prompt_len = 20
  c.max_response_len = 28
  c.total_steps = 400
  c.batch_size = 64
  c.demos_per_problem = 4
  c.mistake_rate = 0.1
  c.optim = ml_collections.ConfigDict(dict(
      learning_rate=2e-3, warmup_steps=40, schedule="cosine", weight_decay=0.0, grad_clip=1.0))
  c.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=-1, tensor=1, num_devices=0))
  c.eval_every = 200
  c.checkpoint_every = 200
  c.eval = ml_collections.ConfigDict(dict(num_prompts=128, num_samples=8, temperature=1.0))
  if arg == "tiny":
    c.model.preset = "tiny"
    c.total_steps = 4
    c.batch_size = 8
    c.eval_every = c.checkpoint_every = 2
    c.eval.num_prompts = 4
    c.eval.num_samples = 4
  elif arg not in (None, ""):
    raise ValueError(f"unknown config arg {arg!r}; valid: tiny")
  return c
