"""GRPO (arXiv 2402.03300) from an imported Hugging Face checkpoint (Llama 3 / Qwen2.5).

Command:  explore-rl train --config configs/hf_grpo.py --workdir runs/hf_grpo \
            --config.init_from=checkpoints/Qwen2.5-0.5B-Instruct \
            --config.task_kwargs.path=data/gsm8k/train.jsonl
          `init_from` is a directory with config.json, model.safetensors (or
          model.safetensors.index.json + shards) and tokenizer.json (+ chat template),
          e.g. a Hub snapshot; `task_kwargs.path` a GSM8K-style JSONL file.
Hardware: one 80 GB GPU (H100/A100) for a 0.5B-1.5B checkpoint (fp32 params and Adam
          state: 16 bytes/param); larger ones over an FSDP mesh (`mesh.fsdp=-1`).
Runtime:  not measured here (no real checkpoint or GPU on the CPU dev machine); the
          cost is dominated by 32 x 8 samples of up to 384 tokens per step.
Expected: reward_mean (GSM8K accuracy) and pass@1 rise from the checkpoint's own
          level over the first ~100 steps, while entropy and distinct answers per
          prompt fall, as in the char-level GRPO runs.

Prompts go through the checkpoint's chat template (`hf.chat_prompts`); responses are
scored by their final answer (`####`, `\\boxed{}` or the last number).

Smoke variant: `configs/hf_grpo.py:tiny` starts from the checkpoint in the environment
variable EXPLORE_RL_HF_CHECKPOINT (a test writes a tiny one with
`hf_export.save_hf_checkpoint` + `hf_export.write_char_tokenizer`) on the tiny
`partition` setting of every `:tiny`; unset, it trains the tiny preset from scratch.
"""
import os

import ml_collections

from explore_rl.training.rl_config import rl_config

HF_CHECKPOINT_ENV = "EXPLORE_RL_HF_CHECKPOINT"


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "grpo"           # (r - mean) / (std + 1e-6), ddof 1 (verl)
  c.objective.loss = "ppo"
  c.objective.aggregation = "token-mean"
  # Keyword arguments of hf_import.load_hf_policy when init_from is a HF checkpoint.
  c.hf = ml_collections.ConfigDict(dict(dtype="float32", chat_prompts=True))
  if arg == "tiny":
    c.init_from = os.environ.get(HF_CHECKPOINT_ENV, "")
    c.hf.chat_prompts = False              # test checkpoints are char-level, no template
    return c
  c.init_from = "checkpoints/Qwen2.5-0.5B-Instruct"
  c.task = "jsonl"
  c.task_kwargs = ml_collections.ConfigDict(dict(
      path="data/gsm8k/train.jsonl",
      prompt_template="{question}\nReason step by step, then give the final answer after '####'."))
  c.difficulty = None                      # GSM8K has no levels: uniform over the records
  c.max_prompt_len = 256                   # chat template + question, in checkpoint tokens
  c.max_response_len = 384
  c.total_steps = 200
  c.eval_every = c.checkpoint_every = 50
  c.rollout.prompts_per_step = 32
  c.learner.mini_batches = 4
  c.learner.micro_batches = 4
  c.optim.learning_rate = 1e-6             # pretrained weights: small steps
  c.eval.num_prompts = 128
  return c
