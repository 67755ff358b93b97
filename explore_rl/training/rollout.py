"""Rollouts with scores: problems -> prompts -> N samples each -> rewards, signatures.

Shared by the RL loop and evaluation: one jitted `generate` call per chunk of
prompts, then host-side decoding, verification and strategy signatures.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import numpy as np

from explore_rl.sampling.generate import Rollout, generate
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.tasks.base import DEGENERATE, Problem
from explore_rl.training.batches import encode_prompts


@dataclasses.dataclass
class ScoredRollout:
  """B prompts x N samples; arrays are [B*N, ...] prompt-major unless noted."""
  problems: list[Problem]             # [B]
  prompt_tokens: np.ndarray           # int32 [B, P]
  prompt_valid: np.ndarray            # bool [B, P]
  rollout: Rollout                    # device arrays [B*N, M]
  responses: list[str]                # [B*N]
  rewards: np.ndarray                 # fp32 [B, N]
  statuses: list[str]                 # [B*N]
  signatures: list[list]              # [B][N], hashable or DEGENERATE
  num_samples: int

  @property
  def correct(self) -> np.ndarray:    # bool [B, N]
    return self.rewards >= 1.0

  def distinct_successful_strategies(self) -> np.ndarray:  # int [B]
    return np.asarray([
        len({s for s, ok in zip(sigs, row) if ok and s != DEGENERATE})
        for sigs, row in zip(self.signatures, self.correct)])


def sample_and_score(graphdef, params, task, tokenizer, problems: Sequence[Problem], *,
                     num_samples: int, sampling: SamplingConfig, prompt_len: int,
                     rng: jax.Array) -> ScoredRollout:
  prompt_tokens, prompt_valid = encode_prompts(tokenizer, [p.prompt for p in problems],
                                               prompt_len)
  out = generate(graphdef, params, prompt_tokens, prompt_valid, rng, num_samples=num_samples,
                 config=sampling, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
  tokens, truncated = np.asarray(out.tokens), np.asarray(out.truncated)
  responses = [tokenizer.decode(t) for t in tokens]
  rewards, statuses, signatures = [], [], []
  for b, problem in enumerate(problems):
    row_r, row_s = [], []
    for j in range(num_samples):
      i = b * num_samples + j
      score = task.score(problem, responses[i], truncated=bool(truncated[i]))
      row_r.append(score.reward)
      statuses.append(score.status)
      row_s.append(task.signature(problem, responses[i]) if score.status != "truncated"
                   else DEGENERATE)
    rewards.append(row_r)
    signatures.append(row_s)
  return ScoredRollout(list(problems), prompt_tokens, prompt_valid, out, responses,
                       np.asarray(rewards, np.float32), statuses, signatures, num_samples)
