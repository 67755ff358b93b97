"""Evaluate a policy on held-out problems: pass@k curve, strategy diversity, entropy."""
from __future__ import annotations

from typing import Sequence

import jax
import numpy as np

from explore_rl.eval.passk import pass_at_k_curve
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.tasks.base import Problem
from explore_rl.training.rollout import sample_and_score


def evaluate(graphdef, params, task, tokenizer, problems: Sequence[Problem], *,
             num_samples: int, sampling: SamplingConfig, prompt_len: int, rng: jax.Array,
             chunk: int = 64) -> dict:
  """Metrics over `problems` with `num_samples` samples each.

  Keys: pass@k (and its standard error across prompts) for k = 1, 2, 4, ..., n;
  `distinct_strategies` (mean over prompts of distinct correct strategies among
  the n samples), `eval_entropy` (mean per-token policy entropy of the samples),
  `eval_response_len`, `eval_truncated_frac`, `eval_malformed_frac`.
  """
  num_correct, distinct, entropy, length, statuses = [], [], [], [], []
  for start in range(0, len(problems), chunk):
    rng, key = jax.random.split(rng)
    part = sample_and_score(graphdef, params, task, tokenizer, problems[start:start + chunk],
                            num_samples=num_samples, sampling=sampling, prompt_len=prompt_len,
                            rng=key)
    num_correct.append(part.correct.sum(axis=1))
    distinct.append(part.distinct_successful_strategies())
    mask = np.asarray(part.rollout.mask)
    entropy.append((np.asarray(part.rollout.entropy) * mask).sum())
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
  return out
