"""The configured objective: reward shaping -> advantages -> per-token loss.

Configs name the pieces (`config.objective`); this module resolves them in the
registries of `explore_rl.objectives` (unknown names fail at start-up with the
valid ones) and adapts their call forms:

- a reward shaper (`dra`, `evol`, `dapo_overlong`) gets the context its
  signature asks for among `lengths`, `embeddings`, `answer_ids`, `mask`;
- an advantage estimator gets `rewards[B, N]` plus, when its signature has them,
  `cluster_ids`, `mask` and `rng`, and its configured keyword hyper-parameters;
- the per-token loss is the named policy loss + β·KL to the reference + entropy
  bonus, aggregated by the named mode into (numerator, denominator).
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.objectives import advantages as _advantages  # noqa: F401  (registers)
from explore_rl.objectives import entropy_control, policy_loss  # noqa: F401  (registers)
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.registries import (ADVANTAGES, AGGREGATIONS, POLICY_LOSSES,
                                              REWARD_SHAPERS)

_CONTEXT = ("cluster_ids", "mask", "rng", "lengths", "embeddings", "answer_ids")


def _call_with_context(fn, first, kwargs: Mapping, context: Mapping):
  params = inspect.signature(fn).parameters
  extra = {k: v for k, v in context.items() if k in params and v is not None}
  return fn(first, **extra, **kwargs)


def _needs(fn, name: str) -> bool:
  return name in inspect.signature(fn).parameters


@dataclasses.dataclass(frozen=True)
class LossSpec:
  """Hashable description of the per-token loss (a static argument of the jitted update)."""
  loss: str = "ppo"
  loss_kwargs: tuple = ()
  aggregation: str = "token-mean"
  aggregation_kwargs: tuple = ()
  kl_coef: float = 0.0
  kl_estimator: str = "k3"
  entropy_coef: float = 0.0

  def __call__(self, logprobs, old_logprobs, advantages, mask, *, rng, ref_logprobs, entropy):
    """(numerator, denominator, metrics) of the aggregated loss over [B, T] tokens."""
    per_token, metrics = POLICY_LOSSES.get(self.loss)(
        logprobs, old_logprobs, advantages, mask, rng=rng, **dict(self.loss_kwargs))
    metrics = {k: v for k, v in metrics.items() if jnp.ndim(v) == 0}
    if self.kl_coef:
      kl, kl_metrics = policy_loss.kl_penalty(logprobs, ref_logprobs, mask, coef=self.kl_coef,
                                              estimator=self.kl_estimator)
      per_token, metrics = per_token + kl, {**metrics, **kl_metrics}
    if self.entropy_coef:
      bonus, _ = policy_loss.entropy_bonus(entropy, mask, coef=self.entropy_coef)
      per_token = per_token + bonus
    cov = entropy_control.token_covariance(logprobs, advantages, mask)
    metrics.update(entropy_control.covariance_stats(cov, mask))
    num, den = aggregate(per_token, mask, mode=self.aggregation, **dict(self.aggregation_kwargs))
    return num, den, metrics


class Objective:
  """Built once from `config.objective`; validates every name at construction."""

  def __init__(self, cfg):
    self.advantage_name = cfg.advantage
    self.advantage_fn = ADVANTAGES.get(cfg.advantage)
    self.advantage_kwargs = dict(cfg.get("advantage_kwargs", {}))
    self.shaper_name = cfg.get("reward_shaper", "") or ""
    self.shaper_fn = REWARD_SHAPERS.get(self.shaper_name) if self.shaper_name else None
    self.shaper_kwargs = dict(cfg.get("reward_shaper_kwargs", {}))
    POLICY_LOSSES.get(cfg.loss)
    AGGREGATIONS.get(cfg.aggregation)
    self.loss_spec = LossSpec(
        loss=cfg.loss, loss_kwargs=tuple(sorted(dict(cfg.get("loss_kwargs", {})).items())),
        aggregation=cfg.aggregation,
        aggregation_kwargs=tuple(sorted(dict(cfg.get("aggregation_kwargs", {})).items())),
        kl_coef=float(cfg.get("kl_coef", 0.0)), kl_estimator=cfg.get("kl_estimator", "k3"),
        entropy_coef=float(cfg.get("entropy_coef", 0.0)))
    policy_loss.KL_ESTIMATORS.get(self.loss_spec.kl_estimator)
    self.dynamic_sampling = bool(cfg.get("dynamic_sampling", False))

  @property
  def needs_embeddings(self) -> bool:
    return self.shaper_fn is not None and _needs(self.shaper_fn, "embeddings")

  @property
  def needs_answers(self) -> bool:
    return self.shaper_fn is not None and _needs(self.shaper_fn, "answer_ids")

  @property
  def needs_clusters(self) -> bool:
    return _needs(self.advantage_fn, "cluster_ids")

  def shape_rewards(self, rewards: np.ndarray, **context) -> np.ndarray:
    if self.shaper_fn is None:
      return rewards
    shaped = _call_with_context(self.shaper_fn, jnp.asarray(rewards), self.shaper_kwargs, context)
    return np.asarray(shaped, np.float32)

  def advantages(self, rewards: np.ndarray, **context: Any) -> np.ndarray:
    """rewards fp32 [B, N] -> advantages fp32 [B, N]; NaN/Inf rewards count as 0."""
    rewards = np.nan_to_num(rewards, nan=0.0, posinf=0.0, neginf=0.0)
    adv = _call_with_context(self.advantage_fn, jnp.asarray(rewards), self.advantage_kwargs,
                             context)
    return np.asarray(jax.device_get(adv), np.float32)
