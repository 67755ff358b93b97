"""One RL step, top to bottom (the data path of docs/design.md):

  sample (the curriculum's problems, N responses each; dynamic sampling's rounds;
  drawn now, or up to rollout.max_staleness versions ahead: training/async_rollouts.py)
  -> score (the verifier's rewards, inside sampling) -> judge (strategy clusters)
  -> context (the fields the objective declared) -> advantages [B, N] (jitted)
  -> update epochs (the trainer's update component) -> metrics

`run` is a trainer: its components (built by training/components.py from the config)
and its state (train state, teacher, counters). Determinism: every random choice of
step s comes from (seed, s), and the curriculum's position is checkpointed, so a run
resumed from its last checkpoint writes the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import time

import jax
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.sampling.rollout import ScoredRollout
from explore_rl.tasks import scoring_pool
from explore_rl.training.flops import add_flops
from explore_rl.training.group_context import group_context


def step_keys(seed: int, step: int) -> jax.Array:
  """The (sampling, advantage, update) PRNG keys of step `step`, from (seed, step) only."""
  return jax.random.split(jax.random.fold_in(jax.random.key(seed), step), 3)


def rl_step(run, step: int) -> dict:
  """The step's metrics; `run.state` (and the curriculum, counters) move one step on."""
  _, k_adv, k_update = step_keys(run.config.seed, step)   # the rollout source samples
  pool_before = scoring_pool().metrics()
  t0 = time.perf_counter()
  scored, metrics = run.rollouts.next(step)     # sample + score (verifier), maybe ahead
  t1 = time.perf_counter()
  objective = run.parts.objective
  context, judge_metrics = group_context(run, scored, objective.needs, k_adv)  # judge, context
  shaped, adv = map(np.asarray, to_host(objective(context)))      # advantages [B, N]
  t2 = time.perf_counter()
  update = run.update(run, scored, adv, step, k_update)           # update epochs
  t3 = time.perf_counter()

  metrics.update(sandbox_metrics(run.counters, pool_before, scoring_pool().metrics()))
  metrics.update(judge_metrics)
  metrics.update(rollout_metrics(scored, shaped, adv))
  metrics.update(time_sample=t1 - t0, time_score=t2 - t1, time_update=t3 - t2,
                 step_time=t3 - t0, tokens_per_s=metrics["_sampled_tokens"] / (t3 - t0))
  metrics.pop("_sampled_tokens")
  add_flops(run.counters, "sample", metrics.pop("_flops_sample"))  # the update added its own
  run.counters["updates_skipped_total"] += update["updates_skipped"]
  metrics.update(update)
  metrics.update(run.counters)
  metrics.update({f"world_{k}": v for k, v in run.parts.curriculum.stats().items()})
  metrics.update(family_metrics(run.parts.families, scored))
  return metrics


def rollout_metrics(scored: ScoredRollout, shaped: np.ndarray, adv: np.ndarray) -> dict:
  """What the step sampled: rewards, pass@1, strategies, entropy, lengths, advantages."""
  host = scored.host
  mask = host.mask
  return {
      "reward_mean": float(scored.rewards.mean()), "reward_std": float(scored.rewards.std()),
      "shaped_reward_mean": float(shaped.mean()),
      "train_pass@1": float(scored.correct.mean()),
      "train_distinct_strategies": float(scored.distinct_successful_strategies().mean()),
      "rollout_entropy": float((host.entropy * mask).sum() / max(mask.sum(), 1)),
      "response_len": float(mask.sum(1).mean()),
      "truncated_frac": float(host.truncated.mean()),
      "advantage_abs_mean": float(np.abs(adv).mean())}


def family_metrics(families: dict, scored: ScoredRollout) -> dict:
  """A mixture's groups and train pass@1 per family ({} for a single task)."""
  out = {}
  family = np.asarray([p.family for p in scored.problems])
  for name in families:
    rows = family == name
    out[f"{name}/train_groups"] = int(rows.sum())
    if rows.any():
      out[f"{name}/train_pass@1"] = float(scored.correct[rows].mean())
  return out


def sandbox_metrics(counters: dict, before: dict, after: dict) -> dict:
  """The shared scoring pool's counts over this step's rollout (`sandbox_calls`, `_ok`,
  `_timeout`, `_error`, `_server_starts`, `_seconds_mean`, isolation flags) and the run's
  totals (`sandbox_{calls,timeout,error}_total`, checkpointed with the counters); {}
  while the run has not scored in the pool (families without third-party scorers)."""
  calls = after["sandbox_calls"] - before["sandbox_calls"]
  if not calls and "sandbox_calls_total" not in counters:
    return {}
  out = {f"sandbox_{k}": after[f"sandbox_{k}"] - before[f"sandbox_{k}"]
         for k in ("calls", "ok", "timeout", "error", "server_starts")}
  seconds = (after["sandbox_seconds_mean"] * after["sandbox_calls"]
             - before["sandbox_seconds_mean"] * before["sandbox_calls"])
  out["sandbox_seconds_mean"] = seconds / max(calls, 1)
  out.update({k: float(v) for k, v in after.items() if k.startswith("sandbox_isolated_")})
  for k in ("calls", "timeout", "error"):
    counters[f"sandbox_{k}_total"] = counters.get(f"sandbox_{k}_total", 0) + out[f"sandbox_{k}"]
  return out
