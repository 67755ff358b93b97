"""The diversity-judge contract, the JUDGES registry, and batched clustering.

A judge maps the N responses of a prompt to int32 strategy-cluster ids
(see `explore_rl.rewards.clusters` for the numbering); the polychromatic set
objective counts distinct ids (Poly-EPO, arXiv 2604.17654, docs/algorithms.md, "Set RL").
Implementations: `signature` (the task's own strategy signature), `embedding`
(MiniLM cosine similarity + agglomerative clustering), `lm_judge` (an
OpenAI-compatible chat endpoint clusters all responses in one call).
"""
from __future__ import annotations

import abc
from typing import Any, Callable, Hashable, Sequence

import numpy as np

from explore_rl.registry import Registry

Signatures = Sequence[Hashable] | None


class Judge(abc.ABC):
  """Clusters the responses of one prompt by strategy."""

  @abc.abstractmethod
  def cluster(
      self, prompt: str, responses: Sequence[str], *, signatures: Signatures = None
  ) -> np.ndarray:
    """Returns int32[N] ids: >= 0 in first-appearance order, -1 for degenerate."""

  def cluster_batch(
      self,
      prompts: Sequence[str],
      groups: Sequence[Sequence[str]],
      *,
      signatures: Sequence[Signatures] | None = None,
  ) -> list[np.ndarray]:
    """One `cluster` call per prompt; judges override this to batch or parallelise."""
    sigs = [None] * len(prompts) if signatures is None else signatures
    return [self.cluster(p, r, signatures=s) for p, r, s in zip(prompts, groups, sigs)]

  def metrics(self) -> dict[str, float]:
    """Counters for logging (calls, retries, fallbacks, ...)."""
    return {}


JUDGES: Registry[Callable[..., Judge]] = Registry("judge")


def get_judge(name: str, **kwargs: Any) -> Judge:
  """Builds the judge registered as `name` with its keyword options."""
  return JUDGES.build(name, **kwargs)


def cluster_groups(
    judge: Judge,
    prompts: Sequence[str],
    groups_of_responses: Sequence[Sequence[str]],
    signatures: Sequence[Sequence[Hashable]] | None = None,
) -> np.ndarray:
  """Clusters B prompt groups of N responses each: int32[B, N]."""
  num_prompts = len(prompts)
  if len(groups_of_responses) != num_prompts:
    raise ValueError(f"{num_prompts} prompts but {len(groups_of_responses)} response groups")
  if signatures is not None and len(signatures) != num_prompts:
    raise ValueError(f"{num_prompts} prompts but {len(signatures)} signature groups")
  sizes = {len(g) for g in groups_of_responses}
  if len(sizes) > 1:
    raise ValueError(f"every prompt needs the same number of responses, got sizes {sorted(sizes)}")
  num_responses = sizes.pop() if sizes else 0
  ids = judge.cluster_batch(prompts, groups_of_responses, signatures=signatures)
  return np.asarray(ids, np.int32).reshape(num_prompts, num_responses)  # [B, N]
