"""The objective a config names, built: reward shaping -> advantages -> per-token loss.

Configs name the pieces (`config.objective`); they are resolved here in the
registries of `explore_rl.objectives` (unknown names and hyper-parameters fail at
start-up with the valid ones). Advantage estimators and reward shapers receive
the per-group context fields they declared (`objectives/catalog.py`) and run
as one jitted function; the per-token loss is the sum of the loss terms the config
turns on (`objectives/loss_terms.py`: the named policy loss, β·KL to the reference,
the entropy bonus, the covariance statistics, self-distillation, your own), aggregated
into (numerator, denominator). See docs/design.md, "Adding a component".
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
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.context import GroupContext
from explore_rl.objectives.importance import IS_CORRECTIONS, check_thresholds, mismatch_metrics
from explore_rl.objectives.loss_terms import Term, TokenInputs, sum_terms
from explore_rl.objectives.token_masks import TOKEN_MASKS, check_fraction
from explore_rl.objectives.catalog import (ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS,
                                              LOSS_TERMS, POLICY_LOSSES, REWARD_SHAPERS, needs)
from explore_rl.training.distill_teacher import DistillSettings, distill_settings


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
  """Hashable description of the per-token loss (a static argument of the jitted update):
  the terms summed per token (`objectives.loss_terms`) and their aggregation."""
  terms: tuple[Term, ...]
  aggregation: str = "token-mean"
  aggregation_kwargs: tuple = ()

  @property
  def needs(self) -> frozenset[str]:
    """The optional learner inputs the terms read (`loss_terms.TERM_INPUTS`)."""
    return frozenset(n for term in self.terms for n in term.needs)

  @property
  def selects(self) -> bool:
    """Whether a term chooses tokens over its batch (Clip-Cov, KL-Cov, a token mask)."""
    return any(term.selects for term in self.terms)

  def select(self, x: TokenInputs, *, rng):
    """{term name: its token choice} over all valid tokens of `x` (the trainer passes the
    whole mini-batch, detached), for `__call__`'s `selected`."""
    return {term.name: term(x, rng=rng)[1]["selected"] for term in self.terms if term.selects}

  def __call__(self, x: TokenInputs, *, rng, selected=None):
    """(numerator, denominator, metrics) of the aggregated loss over [B, T] tokens; the
    selecting terms use `selected` (from `select`) or choose over `x` (metrics["selected"])."""
    per_token, metrics = sum_terms(self.terms, x, rng=rng, selected=selected)
    num, den = aggregate(per_token, x.mask, mode=self.aggregation,
                         **dict(self.aggregation_kwargs))
    return num, den, metrics


def loss_terms(cfg, distill: DistillSettings | None) -> tuple[Term, ...]:
  """The terms `config.objective` turns on, the policy term first; each is checked (names,
  hyper-parameters) here, at start-up."""
  loss_kwargs = dict(cfg.get("loss_kwargs", {}))
  _check_hparams("policy loss", cfg.loss, _get(POLICY_LOSSES, cfg.loss), loss_kwargs, ("rng",))
  loss_kwargs.update(correction_settings(cfg))
  loss_kwargs.update(token_mask_settings(cfg))
  terms = [Term("policy", tuple(sorted({"loss": cfg.loss, **loss_kwargs}.items())))]
  kl_coef, estimator = float(cfg.get("kl_coef", 0.0)), cfg.get("kl_estimator", "k3")
  _get(KL_ESTIMATORS, estimator)
  if kl_coef:
    if estimator == "k1":
      logging.warning("kl_estimator='k1' as a loss term has zero expected gradient "
                      "(E_π[∇ log π] = 0): it does not pull towards the reference. Use k3 or k2.")
    terms.append(Term("kl", (("coef", kl_coef), ("estimator", estimator))))
  if float(cfg.get("entropy_coef", 0.0)):
    terms.append(Term("entropy", (("coef", float(cfg.entropy_coef)),)))
  if cfg.get("covariance_stats", True):
    terms.append(Term("covariance_stats"))
  if distill is not None:
    terms.append(Term("distill", tuple(sorted(distill.spec.loss_kwargs().items()))))
  for name, hparams in dict(cfg.get("loss_terms", {})).items():
    hparams = dict(hparams)
    _check_hparams("loss term", name, _get(LOSS_TERMS, name), hparams, ("rng",))
    terms.append(Term(name, tuple(sorted(hparams.items()))))
  return tuple(terms)


def correction_settings(cfg) -> dict:
  """The policy term's importance correction (`objective.is_correction`, thresholds
  `is_cap`, `is_lower`, `is_upper`; objectives/importance.py), checked: {} for `none`."""
  if "truncated_is" in cfg:
    raise ConfigError("objective.truncated_is is replaced by objective.is_correction "
                      "(token_tis is the old truncated IS)")
  name = cfg.get("is_correction", "none")
  _get(IS_CORRECTIONS, name)
  if name == "none":
    return {}
  if not POLICY_LOSSES.info(cfg.loss).get("is_correction"):
    valid = [n for n in POLICY_LOSSES if POLICY_LOSSES.info(n).get("is_correction")]
    raise ConfigError(f"objective.is_correction={name!r} weights a policy loss that takes it "
                      f"({', '.join(valid)}), not {cfg.loss!r}")
  if cfg.advantage == "none":
    raise ConfigError(f"objective.is_correction={name!r} weights the policy loss, which is 0 "
                      "with objective.advantage='none' (distillation only): set it to 'none'")
  settings = dict(is_correction=name, is_cap=float(cfg.get("is_cap", 2.0)),
                  is_lower=float(cfg.get("is_lower", 0.5)),
                  is_upper=float(cfg.get("is_upper", 2.0)))
  try:
    check_thresholds(cap=settings["is_cap"], lower=settings["is_lower"],
                     upper=settings["is_upper"])
  except ValueError as e:
    raise ConfigError(f"objective.is_correction={name!r}: {e}") from None
  return settings


def token_mask_settings(cfg) -> dict:
  """The policy term's token mask (`objective.token_mask`, objectives/token_masks.py) and
  its `forking_fraction`, checked: {} for `none`."""
  name = cfg.get("token_mask", "none") or "none"
  if name == "none":
    return {}
  if name not in TOKEN_MASKS.names():
    raise ConfigError(f"unknown token mask {name!r}; valid names: "
                      f"{', '.join(['none', *TOKEN_MASKS.names()])}")
  try:
    fraction = check_fraction("objective.forking_fraction", cfg.get("forking_fraction", 0.2))
  except (TypeError, ValueError) as e:
    raise ConfigError(str(e)) from None
  return dict(token_mask=name, forking_fraction=fraction)


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
    self.distill = distill_settings(cfg.get("distill"))
    _get(AGGREGATIONS, cfg.aggregation)
    self.loss_spec = LossSpec(
        terms=loss_terms(cfg, self.distill), aggregation=cfg.aggregation,
        aggregation_kwargs=tuple(sorted(dict(cfg.get("aggregation_kwargs", {})).items())))
    self.correction = correction_settings(cfg)
    paper = POLICY_LOSSES.info(cfg.loss).get("aggregation")
    if paper and cfg.aggregation != paper:
      logging.warning("the %s loss aggregates as its paper does with objective.aggregation=%r, "
                      "not %r", cfg.loss, paper, cfg.aggregation)
    self.dynamic_sampling = bool(cfg.get("dynamic_sampling", False))
    self.max_sampling_rounds = int(cfg.get("max_sampling_rounds", 4))
    self._advantages = jax.jit(functools.partial(
        _shape_and_estimate, self.shaper_fn, self.shaper_needs,
        tuple(sorted(self.shaper_kwargs.items())), self.advantage_fn, self.advantage_needs,
        tuple(sorted(self.advantage_kwargs.items()))))

  def mismatch_metrics(self, old_logprobs, behaviour_logprobs, mask, *,
                       always: bool = False) -> dict[str, float]:
    """The importance correction's diagnostics (`importance.mismatch_metrics`: mismatch/kl,
    ...) over [R, M] rows, e.g. a whole rollout; without a correction {}, or with `always`
    those of `none` (weights 1: the KL is the gap; rollouts drawn ahead log it)."""
    if not self.correction and not always:
      return {}
    c = self.correction
    thresholds = dict(cap=c["is_cap"], lower=c["is_lower"], upper=c["is_upper"]) if c else {}
    out = mismatch_metrics(old_logprobs, behaviour_logprobs, mask,
                           correction=c.get("is_correction", "none"), **thresholds)
    return {k: float(v) for k, v in out.items()}

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
