"""On-policy distillation from a separate teacher checkpoint: per-token reverse KL to it.

The student samples; a frozen teacher (`teacher_from`: a run workdir or a Hugging Face
directory, the same tokenizer) scores the same tokens on the same plain prompt
(`objective.distill.privileged=False`), and the loss is KL(p_s ‖ p_t) per token over the
vocabulary (`method="teacher"`: no aggregation; GKD arXiv 2306.13649, docs/algorithms.md
"On-policy distillation"). No RL reward (`advantage="none"`).

Command:  explore-rl train --config configs/sft.py --workdir runs/demo/sft_base \
              --config.model.preset=base            # a larger teacher
          explore-rl train --config configs/on_policy_distill.py --workdir runs/opd
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 41 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured at the full setting (the larger SFT teacher is a separate 10-minute
run); the `:tiny` variant (teacher = the initial policy, so KL starts at 0) is
smoke-tested, and tests/training/test_distill_trainer.py checks the teacher is frozen.
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.teacher_from = "runs/demo/sft_base"    # '' : the initial policy (objective.distill.teacher)
  c.objective.advantage = "none"
  c.objective.loss = "pg"
  c.objective.distill = ml_collections.ConfigDict(dict(
      coef=1.0, method="teacher", divergence="reverse_kl", teacher="initial", privileged=False))
  if arg == "tiny":
    c.teacher_from = ""
  return c
