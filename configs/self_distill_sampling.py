"""GRPO on aggregated samples: tokens drawn from p* ∝ p_s·p_t, the teacher shown the solution.

For problems the student alone rarely solves, the `aggregated` sampler decodes the plain
prompt (student) and the privileged prompt `Task.teacher_prompt` (teacher: the same
model, live params) side by side over two KV caches and draws each token from the
product-of-experts aggregate (docs/algorithms.md, "Aggregated sampling"). Behaviour
log-probs are p*'s and policy log-probs the student's; each token's loss is weighted by
min(π_old/p*, 2) (`objective.is_correction="token_tis"`). That is not an on-policy
update: the prefixes stay p*'s (docs/algorithms.md, "Importance corrections"). It is the
default because the guidance is the point: from the hinted prior at step 0 the sequence
weights (`seq_tis`) keep an effective sample size of 0.19 and `seq_mis` drops 95% of the
samples, undoing the teacher's steer; the advantage is GRPO's on the verifier's rewards.

Command:  explore-rl train --config configs/self_distill_sampling.py --workdir runs/agg
          (after: explore-rl train --config configs/sft.py --workdir runs/demo/sft)
Hardware: 2 CPU cores. Runtime: not measured at full scale on a quiet machine; the `:tiny`
smoke run took 56 s on a 2-core machine at load 5-15 (other jobs).
Expected: not measured at full scale (see experiments/self_distillation.py for the
comparison). metrics.jsonl logs train_pass@1 under p* next to the student's held-out
pass@1, and mismatch/kl, mismatch/ess, mismatch/truncated_frac: how far p* is from the
student.
In experiments/self_distillation.py (countdown d0.3, tiny hinted prior, 40 steps, 3 seeds):
train_pass@1 0.083 ± 0.029 under p* vs GRPO's 0.011, held-out pass@1 0.006 ± 0.005 (GRPO 0.014).
"""
import ml_collections

from explore_rl.training.rl_config import rl_config


def get_config(arg=None):
  c = rl_config(arg)
  c.rollout.sampler = "aggregated"
  c.rollout.sampler_kwargs = ml_collections.ConfigDict(dict(
      method="poe", alpha=1.0, s=0.5, kl_budget=0.1, teacher_prompt_len=0))
  c.objective.advantage = "grpo"
  c.objective.loss = "ppo"
  c.objective.is_correction = "token_tis"   # min(pi_old / p*, is_cap) per token
  return c
