"""The per-group context an objective declared it needs (`objectives/context.py`), computed
from a scored rollout: judge clusters, response embeddings, answer ids, lengths."""
from __future__ import annotations

import numpy as np

from explore_rl.objectives.context import GroupContext
from explore_rl.rewards import cluster_groups
from explore_rl.sampling.rollout import ScoredRollout
from explore_rl.tasks import task_of


def answer_ids(task, rollout: ScoredRollout) -> np.ndarray:
  """int32 [B, N]: per prompt, equal extracted answers share an id; unparseable -1."""
  n = rollout.num_samples
  out = np.full(rollout.rewards.shape, -1, np.int32)
  for b, problem in enumerate(rollout.problems):
    seen: dict = {}
    for j in range(n):
      answer = task_of(problem, task).extract_answer(problem, rollout.responses[b * n + j])
      if answer is not None:
        out[b, j] = seen.setdefault(answer, len(seen))
  return out


def group_context(run, scored: ScoredRollout, needs: frozenset[str], rng
                  ) -> tuple[GroupContext, dict]:
  """(GroupContext [B, N] with the `needs` fields filled, judge metrics). The judge runs
  when cluster ids are needed or `log_clusters` is on (metric distinct_clusters); the
  embedding model only for `embeddings`."""
  n, b = scored.num_samples, len(scored.problems)
  metrics, context = {}, {}
  if "cluster_ids" in needs or run.config.log_clusters:
    prompts = [p.prompt for p in scored.problems]
    groups = [scored.responses[i * n:(i + 1) * n] for i in range(b)]
    cluster_ids = cluster_groups(run.parts.judge, prompts, groups, scored.signatures)
    metrics["distinct_clusters"] = float(np.mean(
        [len(set(row[row >= 0].tolist())) for row in cluster_ids]))
    metrics.update({f"judge_{k}": v for k, v in run.parts.judge.metrics().items()})
    context["cluster_ids"] = cluster_ids
  if "embeddings" in needs:
    context["embeddings"] = run.embed(scored.responses).reshape(b, n, -1)
  if "answer_ids" in needs:
    context["answer_ids"] = answer_ids(run.parts.task, scored)
  return GroupContext(rewards=scored.rewards, mask=np.ones((b, n), bool),
                      lengths=scored.host.lengths.reshape(b, n), rng=rng, **context), metrics
