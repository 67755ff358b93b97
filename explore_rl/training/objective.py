"""The configured objective: reward shaping -> advantages -> per-token loss.

Configs name the pieces (`config.objective`); they are resolved here in the
registries of `explore_rl.objectives` (unknown names and hyper-parameters fail at
start-up with the valid ones). Advantage estimators and reward shapers receive
the per-group context fields they declared (`objectives/registries.py`) and run
as one jitted function; the per-token loss is the named policy loss + β·KL to the
reference + entropy bonus, aggregated into (numerator, denominator).
See docs/design.md, "Adding an objective".
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
from typing import Mapping

import jax
import jax.numpy as jnp

from explore_rl.errors import ConfigError
from explore_rl.objectives import entropy_control, policy_loss
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.context import GroupContext
from explore_rl.objectives.registries import (ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS,
                                              POLICY_LOSSES, REWARD_SHAPERS, needs)


def _get(registry, name: str):
  try:
    return registry.get(name)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _check_hparams(kind: str, name: str, fn, hparams: Mapping, reserved: tuple[str, ...]):
  """Unknown keyword hyper-parameters fail at start-up, naming the accepted ones."""
  params = inspect.signature(fn).parameters
  if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
    return
  accepted = [n for n, p in list(params.items())[1:] if n not in reserved
              and p.kind is not inspect.Parameter.VAR_POSITIONAL]
  unknown = sorted(set(hparams) - set(accepted))
  if unknown:
    raise ConfigError(f"{kind} {name!r} takes no {', '.join(unknown)}; its hyper-parameters: "
                      f"{', '.join(accepted) or 'none'}")


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
  truncated_is: bool = False     # weight tokens by min(π_old/μ, is_cap), μ the behaviour dist
  is_cap: float = 2.0

  def __call__(self, logprobs, old_logprobs, advantages, mask, *, rng, ref_logprobs, entropy,
               behaviour_logprobs):
    """(numerator, denominator, metrics) of the aggregated loss over [B, T] tokens."""
    extra = dict(behaviour_logprobs=behaviour_logprobs, is_cap=self.is_cap) \
        if self.truncated_is else {}
    per_token, metrics = POLICY_LOSSES.get(self.loss)(
        logprobs, old_logprobs, advantages, mask, rng=rng, **dict(self.loss_kwargs), **extra)
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
  """Built once from `config.objective`; validates every name and hyper-parameter."""

  def __init__(self, cfg):
    self.advantage_name = cfg.advantage
    self.advantage_fn = _get(ADVANTAGES, cfg.advantage)
    self.advantage_kwargs = dict(cfg.get("advantage_kwargs", {}))
    self.shaper_name = cfg.get("reward_shaper", "") or ""
    self.shaper_fn = _get(REWARD_SHAPERS, self.shaper_name) if self.shaper_name else None
    self.shaper_kwargs = dict(cfg.get("reward_shaper_kwargs", {}))
    self.advantage_needs = needs(ADVANTAGES, cfg.advantage)
    self.shaper_needs = needs(REWARD_SHAPERS, self.shaper_name) if self.shaper_fn else ()
    _check_hparams("advantage", cfg.advantage, self.advantage_fn, self.advantage_kwargs,
                   self.advantage_needs)
    if self.shaper_fn:
      _check_hparams("reward shaper", self.shaper_name, self.shaper_fn, self.shaper_kwargs,
                     self.shaper_needs)
    loss_fn = _get(POLICY_LOSSES, cfg.loss)
    loss_kwargs = dict(cfg.get("loss_kwargs", {}))
    truncated_is = bool(cfg.get("truncated_is", False))
    reserved = ("rng",) + (("behaviour_logprobs", "is_cap") if truncated_is else ())
    _check_hparams("policy loss", cfg.loss, loss_fn, loss_kwargs, reserved)
    if truncated_is and "behaviour_logprobs" not in inspect.signature(loss_fn).parameters and \
        cfg.loss != "gspo":
      raise ConfigError(f"objective.truncated_is needs a loss that takes behaviour log-probs "
                        f"(ppo, pg, gspo), not {cfg.loss!r}")
    _get(AGGREGATIONS, cfg.aggregation)
    _get(KL_ESTIMATORS, cfg.get("kl_estimator", "k3"))
    self.loss_spec = LossSpec(
        loss=cfg.loss, loss_kwargs=tuple(sorted(loss_kwargs.items())),
        aggregation=cfg.aggregation,
        aggregation_kwargs=tuple(sorted(dict(cfg.get("aggregation_kwargs", {})).items())),
        kl_coef=float(cfg.get("kl_coef", 0.0)), kl_estimator=cfg.get("kl_estimator", "k3"),
        entropy_coef=float(cfg.get("entropy_coef", 0.0)), truncated_is=truncated_is,
        is_cap=float(cfg.get("is_cap", 2.0)))
    if self.loss_spec.kl_coef and self.loss_spec.kl_estimator == "k1":
      logging.warning("kl_estimator='k1' as a loss term has zero expected gradient "
                      "(E_π[∇ log π] = 0): it does not pull towards the reference. Use k3 or k2.")
    if cfg.loss == "gspo" and cfg.aggregation != "seq-mean-token-mean":
      logging.warning("GSPO (arXiv 2507.18071) aggregates per sequence: set objective.aggregation"
                      "='seq-mean-token-mean' (configs/gspo.py), not %r", cfg.aggregation)
    self.dynamic_sampling = bool(cfg.get("dynamic_sampling", False))
    self.max_sampling_rounds = int(cfg.get("max_sampling_rounds", 4))
    self._advantages = jax.jit(functools.partial(
        _shape_and_estimate, self.shaper_fn, self.shaper_needs,
        tuple(sorted(self.shaper_kwargs.items())), self.advantage_fn, self.advantage_needs,
        tuple(sorted(self.advantage_kwargs.items()))))

  @property
  def needs(self) -> frozenset[str]:
    """Context fields the shaper and the estimator take (the trainer computes only these)."""
    return frozenset(self.advantage_needs) | frozenset(self.shaper_needs)

  def __call__(self, context: GroupContext) -> tuple[jax.Array, jax.Array]:
    """(shaped rewards fp32 [B, N], advantages fp32 [B, N]), jitted."""
    return self._advantages(context)


def _shape_and_estimate(shaper, shaper_needs, shaper_kwargs, estimator, estimator_needs,
                        estimator_kwargs, context: GroupContext):
  rewards = jnp.nan_to_num(context.rewards.astype(jnp.float32), nan=0.0, posinf=0.0,
                           neginf=0.0)
  if shaper is not None:
    rewards = shaper(rewards, **context.select(shaper_needs), **dict(shaper_kwargs))
  adv = estimator(rewards, **context.select(estimator_needs), **dict(estimator_kwargs))
  return rewards, adv.astype(jnp.float32)
