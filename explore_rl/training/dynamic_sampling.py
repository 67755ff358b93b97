"""The step's trained groups: one round of sampling, or with DAPO dynamic sampling (arXiv
2503.14476) rounds of oversampled prompts until enough groups are informative."""
from __future__ import annotations

import jax
import numpy as np

from explore_rl.sampling.rollout import ScoredRollout, concat, sample_and_score, select_groups


def informative(rewards: np.ndarray) -> np.ndarray:
  """bool [B]: the group's rewards are not all equal (a group-relative signal exists)."""
  return rewards.max(axis=1) > rewards.min(axis=1)


def select_groups_to_train(rewards: np.ndarray, keep: np.ndarray, num_groups: int,
                           dynamic: bool) -> np.ndarray:
  """Indices of the `num_groups` groups to train on (a static count), kept ones first.

  Groups the curriculum keeps come first. With dynamic sampling informative groups come
  before all others; the caller samples more rounds until there are enough of them (or
  the round cap is hit).
  """
  priority = keep.astype(int)
  if dynamic:
    priority += 2 * informative(rewards)
  return np.argsort(-priority, kind="stable")[:num_groups]


def sample_groups(run, rng) -> tuple[ScoredRollout, dict]:
  """`rollout.prompts_per_step` sampled and verified groups of `run` (a trainer: its config,
  objective, curriculum, sampler, task, policies) and the sampling metrics. With dynamic
  sampling, rounds of `oversample` x prompts are drawn until that many informative groups
  exist, at most `objective.max_sampling_rounds` rounds."""
  c, obj = run.config, run.parts.objective
  num_groups = c.rollout.prompts_per_step
  per_round = int(np.ceil(num_groups * c.objective.get("oversample", 1.0))) \
      if obj.dynamic_sampling else num_groups
  rounds, keeps = [], []
  while True:
    problems = run.parts.curriculum.next_batch(per_round)
    scored = sample_and_score(run.parts.sampler, run.policies(), run.parts.task, problems,
                              num_samples=c.rollout.num_samples,
                              rng=jax.random.fold_in(rng, len(rounds)))
    keeps.append(np.asarray(run.parts.curriculum.update(problems,
                                                  scored.correct.mean(axis=1).tolist())))
    rounds.append(scored)
    enough = sum(int(informative(s.rewards).sum()) for s in rounds) >= num_groups
    if not obj.dynamic_sampling or enough or len(rounds) >= obj.max_sampling_rounds:
      break
  scored = concat(rounds)
  groups = select_groups_to_train(scored.rewards, np.concatenate(keeps), num_groups,
                                  obj.dynamic_sampling)
  sampled_tokens = float(scored.host.mask.sum() + scored.host.prompt_valid.sum()
                         * scored.num_samples)
  trained = select_groups(scored, groups)
  return trained, {"groups_informative": float(informative(trained.rewards).mean()),
                   "sampling_rounds": len(rounds), "_sampled_tokens": sampled_tokens,
                   "_flops_sample": float(scored.host.flops),   # every round's
                   **run.parts.sampler.metrics()}
