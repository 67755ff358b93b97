"""GRPO (arXiv 2402.03300) on SmolLM2-135M-Instruct: chat-shaped arithmetic, the model's
own chat template, 8 prompts x 8 samples x 128 new tokens per step (training/smollm2_config.py).

Command:  explore-rl train --config configs/smollm2_grpo.py --workdir runs/smollm2_grpo
          (LoRA: --config.model.lora.rank=16 --config.optim.learning_rate=1e-4;
          smoke: configs/smollm2_grpo.py:smoke, 1 step of 2 prompts x 2 samples x 16 tokens)
          GPU: the same command on a machine with CUDA JAX (`pip install -U "jax[cuda12]"`).
Hardware: 2 CPU cores (AMD EPYC, shared); any one GPU.
Runtime:  (measured, 2-core AMD EPYC shared with other jobs, load 6-13) `:smoke` 137 s wall,
          98 s of it XLA compiling the update, peak RSS 8.2 GB. One 8 x 8 x 128 step, full
          fine-tuning, fp32, after compiling: 311 s (sampling 103 s, update 207 s); the
          first step 757 s; peak RSS 16.9 GB over the run (the pre-step estimate says
          8.0 GB: XLA:CPU's temporaries and compiles are not in it).
          LoRA (rank 16, lr 1e-4; another machine, a 2-core Intel Xeon at load 1-5):
          87 s per 8 x 8 x 128 step after compiling (sampling 34 s, update 53 s); the
          first step 381 s (287 s XLA); peak RSS 21.0 GB, while compiling. `:smoke` with
          LoRA: 17.5 min wall at load 12-19 (887 s compiling).
          Since the blocks run as a scan, the head a chunk at a time and the update's
          finite check as one cond (docs/design.md; 2-core Intel Xeon, load 5): `:smoke`
          compiles in 64 s of XLA (was 872 s there), peak RSS 4.6 GB (was 13.3 GB).
          On a quiet 2-core Intel Xeon (one device; benchmarks/README.md, "Ninth speed
          pass"): `:smoke` 16.3 s of XLA, 2.8 s with the persistent cache; one 8 x 8 x 256
          step with full fine-tuning 210 s (sampling 92 s, update 117 s), peak RSS 5.6 GiB,
          first-step compile 24.9 s.
Expected: pass@1 of the instruct model on the held-out problems rises from its own level
          over the first ~100 steps while the entropy falls (not measured here: a 100-step
          run takes hours on 2 CPU cores).
"""
from explore_rl.training.smollm2_config import smollm2_config


def get_config(arg=None):
  return smollm2_config("grpo", arg)
