"""The rollout every objective consumes, and its scoring by a task's verifier.

A sampler (`samplers.py`) returns a `RolloutBatch` of device arrays; `score`
brings it to the host once (verifiers and judges read text) and adds rewards,
parse statuses and strategy signatures. The trainer indexes its mini-batches
from the device copy; metrics read the host copy.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl import distributed
from explore_rl.distributed import to_host
from explore_rl.tasks.base import DEGENERATE, STATUSES, Problem, Task
from explore_rl.tasks.chat import chat_problem
from explore_rl.tasks.registry import score_batch, task_of


class RolloutBatch(NamedTuple):
  """B prompts x N samples; sample rows are prompt-major: row b*N + j is sample j of prompt b.

  prompt_tokens/valid are the prompt the trained policy is trained with (the plain
  problem prompt), whatever context a dependent sampler drew the tokens in.
  behaviour_logprobs are the log-probs of the distribution that actually drew each
  token (after temperature, top-k/p, min-p, aggregation with a teacher, or another
  context); policy_logprobs those of the trained policy at the run's temperature on
  the training prompt. Their ratio is the importance weight of off-policy data.
  flops is what the sampler ran to make the batch, every pass (docs/algorithms.md,
  "FLOPs"): a selection of its rows keeps it, a concatenation sums it.
  """
  prompt_tokens: jax.Array       # int32 [B, P], left-padded
  prompt_valid: jax.Array        # bool  [B, P]
  tokens: jax.Array              # int32 [B*N, M], pad after EOS
  mask: jax.Array                # bool  [B*N, M], response tokens including the EOS
  lengths: jax.Array             # int32 [B*N]
  truncated: jax.Array           # bool  [B*N], no EOS within M tokens
  behaviour_logprobs: jax.Array  # fp32  [B*N, M]
  policy_logprobs: jax.Array     # fp32  [B*N, M]
  entropy: jax.Array             # fp32  [B*N, M], entropy of the trained policy's step dist
  flops: jax.Array               # fp32  [], FLOPs of every pass the sampler ran

  @property
  def num_samples(self) -> int:
    return self.tokens.shape[0] // self.prompt_tokens.shape[0]


@dataclasses.dataclass
class ScoredRollout:
  """A rollout with rewards: `batch` stays on the device, `host` is its one host copy."""
  problems: list[Problem]             # [B]
  batch: RolloutBatch                 # device arrays
  host: RolloutBatch                  # NumPy arrays
  responses: list[str]                # [B*N]
  rewards: np.ndarray                 # fp32 [B, N]
  statuses: list[str]                 # [B*N]
  signatures: list[list]              # [B][N], hashable or DEGENERATE
  # The parameters that drew it: their number of updates (a rollout drawn ahead of the
  # learner, training/async_rollouts.py, is older than the learner's; 0 otherwise).
  policy_version: int = 0

  @property
  def num_samples(self) -> int:
    return self.host.num_samples

  @property
  def correct(self) -> np.ndarray:    # bool [B, N]
    return self.rewards >= 1.0

  def distinct_successful_strategies(self) -> np.ndarray:  # int [B]
    return np.asarray([
        len({s for s, ok in zip(sigs, row) if ok and s != DEGENERATE})
        for sigs, row in zip(self.signatures, self.correct)])


def score(task: Task, problems: Sequence[Problem], batch: RolloutBatch,
          tokenizer) -> ScoredRollout:
  """Decode and verify every sample. Each problem is scored by its own family
  (`tasks.task_of`; `task` for problems of its family), sandboxed families in one
  batched call (`tasks.score_batch`). In a multi-process run each process verifies its
  own prompts' samples (`distributed.process_groups`) and the rewards and statuses are
  exchanged, so every process returns the same ScoredRollout."""
  host = to_host(batch)
  n = host.num_samples
  responses = [tokenizer.decode(t) for t in host.tokens]
  mine = distributed.process_groups(len(problems))
  rows = [b * n + j for b in mine for j in range(n)]
  results = score_batch([problems[i // n] for i in rows], [responses[i] for i in rows],
                        host.truncated[rows].tolist(), default_task=task)
  # Every process's rewards and status codes, in process = row order.
  scores = distributed.allgather_rows(np.asarray(
      [(r.reward, STATUSES.index(r.status)) for r in results], np.float64).reshape(-1, 2))
  statuses = [STATUSES[int(code)] for code in scores[:, 1]]
  # Signatures are cheap parses of the text: every process derives them for every row.
  signatures = [[DEGENERATE if statuses[b * n + j] == "truncated" else
                 task_of(p, task).signature(p, responses[b * n + j]) for j in range(n)]
                for b, p in enumerate(problems)]
  return ScoredRollout(list(problems), batch, host, responses,
                       scores[:, 0].astype(np.float32).reshape(len(problems), n), statuses,
                       signatures)


def chat_problems(tokenizer, task: Task | None,
                  problems: Sequence[Problem]) -> list[Problem]:
  """`problems` as chat user messages (`tasks.chat.chat_problem`) when `tokenizer` renders
  prompts through its chat template (`chat_prompts`), else as they are. The one place
  where a run's problems take the shape of its policy's prompts."""
  if not getattr(tokenizer, "chat_prompts", False):
    return list(problems)
  return [chat_problem(task_of(p, task), p) for p in problems]


def sample_and_score(sampler, policies, task: Task, problems: Sequence[Problem], *,
                     num_samples: int, rng: jax.Array) -> ScoredRollout:
  """`sampler(policies, problems, rng, num_samples=N)`, then `score`; the problems first
  take the trained policy's prompt shape (`chat_problems`), and the rollout holds those."""
  problems = chat_problems(policies.trained.tokenizer, task, problems)
  batch = sampler(policies, problems, rng, num_samples=num_samples)
  return score(task, problems, batch, policies.trained.tokenizer)


def _rows(groups: np.ndarray, n: int) -> np.ndarray:
  return (np.asarray(groups)[:, None] * n + np.arange(n)).reshape(-1)


def _take(batch: RolloutBatch, groups: np.ndarray, xp) -> RolloutBatch:
  rows = _rows(groups, batch.num_samples)
  per_prompt = {"prompt_tokens", "prompt_valid"}
  return RolloutBatch(*(x if name == "flops" else
                        xp.take(x, groups if name in per_prompt else rows, axis=0)
                        for name, x in zip(RolloutBatch._fields, batch)))


def select_groups(scored: ScoredRollout, groups: np.ndarray) -> ScoredRollout:
  """The rollout of prompt groups `groups` (int [G]), in that order; device arrays are
  gathered on the device."""
  groups = np.asarray(groups, np.int32)
  rows = _rows(groups, scored.num_samples)
  return ScoredRollout([scored.problems[g] for g in groups], _take(scored.batch, groups, jnp),
                       _take(scored.host, groups, np), [scored.responses[i] for i in rows],
                       scored.rewards[groups], [scored.statuses[i] for i in rows],
                       [scored.signatures[g] for g in groups])


def concat(parts: Sequence[ScoredRollout]) -> ScoredRollout:
  """Several rollouts of the same N and shapes as one (e.g. dynamic sampling's rounds)."""
  if len(parts) == 1:
    return parts[0]
  cat = lambda xp, batches: RolloutBatch(*(sum(xs) if name == "flops" else
                                           xp.concatenate(xs, axis=0)
                                           for name, xs in zip(RolloutBatch._fields,
                                                               zip(*batches))))
  return ScoredRollout(sum((p.problems for p in parts), []),
                       cat(jnp, [p.batch for p in parts]), cat(np, [p.host for p in parts]),
                       sum((p.responses for p in parts), []),
                       np.concatenate([p.rewards for p in parts]),
                       sum((p.statuses for p in parts), []), sum((p.signatures for p in parts), []))
