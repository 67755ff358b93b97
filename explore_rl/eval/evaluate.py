"""Evaluate a policy on held-out problems: pass@k curve, strategy diversity, entropy.

`held_out_problems` is the one definition of a run's evaluation set, shared by
the trainers' periodic eval and `explore-rl eval`.
"""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from explore_rl.eval import diagnostics
from explore_rl.eval.passk import pass_at_k_curve
from explore_rl.models.policy import Policy
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import sample_and_score
from explore_rl.sampling.samplers import IndependentSampler, Policies
from explore_rl.tasks.base import Problem, Task
from explore_rl.tasks.registry import sample_problems, task_of

# Held-out problems come from their own seed stream, disjoint from training's.
HELD_OUT_SEED_OFFSET = 7_777_777


def held_out_problems(task: Task, *, seed: int, num_prompts: int,
                      difficulty: float | None) -> list[Problem]:
  """The evaluation problems of a run with `seed` (the same for train and `explore-rl eval`)."""
  return sample_problems(task, seed + HELD_OUT_SEED_OFFSET, num_prompts, difficulty)


def evaluate(policy: Policy, task: Task, problems: Sequence[Problem], *,
             num_samples: int, sampling: SamplingConfig, prompt_len: int, rng: jax.Array,
             chunk: int = 64, previous_num_correct: Sequence[int] | None = None) -> dict:
  """Metrics over `problems` with `num_samples` independent samples each.

  Keys: pass@k (and its standard error across prompts) for k = 1, 2, 4, ..., n;
  `distinct_strategies` (mean over prompts of distinct correct strategies among
  the n samples), `eval_entropy` (mean per-token policy entropy of the samples),
  `eval_response_len`, `eval_truncated_frac`, `eval_malformed_frac`; the exploration
  diagnostics of `diagnostics.py` (branching points, coverage, and with
  `previous_num_correct`, the previous evaluation's `eval_num_correct` on the same
  problems, per-prompt learning progress); `eval_num_correct`, the list of correct
  samples per problem.
  """
  sampler = IndependentSampler(sampling=sampling, prompt_len=prompt_len)
  num_correct, distinct, entropy, length, statuses = [], [], [], [], []
  tokens, lengths_bn, correct_bn, answers, signatures = [], [], [], [], []
  for start in range(0, len(problems), chunk):
    rng, key = jax.random.split(rng)
    part = sample_and_score(sampler, Policies(policy), task, problems[start:start + chunk],
                            num_samples=num_samples, rng=key)
    b = len(part.problems)
    tokens.append(part.host.tokens.reshape(b, num_samples, -1))
    lengths_bn.append(part.host.lengths.reshape(b, num_samples))
    correct_bn.append(part.correct)
    answers += [[task_of(p, task).extract_answer(p, part.responses[i * num_samples + j])
                 if part.correct[i, j] else None for j in range(num_samples)]
                for i, p in enumerate(part.problems)]
    signatures += part.signatures
    num_correct.append(part.correct.sum(axis=1))
    distinct.append(part.distinct_successful_strategies())
    mask = part.host.mask
    entropy.append((part.host.entropy * mask).sum())
    length.append(mask.sum(axis=1))
    statuses += part.statuses
  curve = pass_at_k_curve(np.concatenate(num_correct), num_samples)
  out = curve.metrics("pass")
  lengths = np.concatenate(length)
  out["distinct_strategies"] = float(np.concatenate(distinct).mean())
  out["eval_entropy"] = float(sum(entropy) / max(lengths.sum(), 1))
  out["eval_response_len"] = float(lengths.mean())
  out["eval_truncated_frac"] = statuses.count("truncated") / len(statuses)
  out["eval_malformed_frac"] = statuses.count("malformed") / len(statuses)
  correct = np.concatenate(num_correct)
  out.update(diagnostics.branching_metrics(np.concatenate(tokens), np.concatenate(lengths_bn)))
  out.update(diagnostics.coverage_metrics(np.concatenate(correct_bn), answers, signatures))
  out.update(diagnostics.learning_progress(previous_num_correct, correct, num_samples))
  out["eval_num_correct"] = [int(c) for c in correct]
  return out
