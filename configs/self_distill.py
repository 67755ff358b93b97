"""Privileged self-distillation: the policy shown the solution as a hint teaches itself.

The student samples on-policy from the plain prompt; the same model, frozen at the
initial (SFT) params, scores the same tokens from `Task.teacher_prompt(problem)` (the
solution, "use it only as a hint"); the loss is the per-token forward KL(p* ‖ p_s) to
the product-of-experts target p* ∝ p_s·p_t (docs/algorithms.md, "Self-distillation";
GKD arXiv 2306.13649, OPSD arXiv 2601.18734). A reverse KL towards an aggregated
target is refused: the student's share of p* cancels from its gradient. No RL reward:
`objective.advantage="none"`, distillation coef 1. For the mix with GRPO keep
`advantage="grpo"` and lower `objective.distill.coef`.

Command:  explore-rl train --config configs/self_distill.py --workdir runs/self_distill
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
          other targets: --config.objective.distill.method=interp|trust_region|teacher
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 31 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured at full scale. The demo prior (configs/sft.py) never saw hinted
prompts, so its teacher may gain little from the hint: give the prior `hint_rate=0.25`
(--config.hint_rate on configs/sft.py, with max_prompt_len 96) as
experiments/self_distillation.py does. metrics.jsonl logs distill_loss, kl_teacher_student
(how far the hinted teacher is from the student) and kl_target_student.
In experiments/self_distillation.py (countdown d0.3, tiny hinted prior, 40 steps, 3 seeds)
no aggregation beat GRPO's held-out pass@1 (e.g. poe 0.012 ± 0.027 vs 0.014 ± 0.026); the
forward KL makes the aggregations train differently from the teacher alone (held-out
entropy, paired, poe −0.41 ± 0.06 below SD teacher).
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.objective.advantage = "none"           # no RL signal: the distillation term alone
  c.objective.loss = "pg"
  c.objective.distill = ml_collections.ConfigDict(dict(
      coef=1.0, method="poe", divergence="forward_kl", alpha=1.0, s=0.5, kl_budget=0.1,
      beta=0.5, teacher="initial", ema_decay=0.99, privileged=True, teacher_prompt_len=0))
  return c
