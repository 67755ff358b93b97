"""Per-token loss terms that compose, as optax transformations do: each term is a pure
function, and `sum_terms` adds the ones a config asks for.

A term reads the learner's per-token arrays (`TokenInputs`) and returns
`(per_token_loss [B, T] or None, metrics)`; None is a term that only measures (the
covariance statistics). The RL loss of one mini-batch is

    ℓ_t = ℓ_t^policy + β·KL_t(π ‖ π_ref) − c_H·H_t + c_D·D(p_s, p*)_t      (+ your terms)

each summand a registered term (`LOSS_TERMS`), present only when its coefficient is on:
the learner runs the reference forward pass only for a term that needs `ref_logprobs`,
keeps the full logits only for one that needs `logits`, and computes nothing for a term
that is off. A new term is one function and one decorator (docs/design.md, "Adding a
loss term"):

    @LOSS_TERMS.register("my_term", needs=("entropy",))
    def my_term(x: TokenInputs, *, rng, coef): return coef * x.entropy, {}

and `config.objective.loss_terms = {"my_term": {"coef": 0.1}}` selects it.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from explore_rl.objectives import distillation, entropy_control, importance, policy_loss
from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.token_masks import TOKEN_MASKS
from explore_rl.registry import Registry

__all__ = ["LOSS_TERMS", "TERM_INPUTS", "Term", "TokenInputs", "sum_terms"]

LOSS_TERMS = Registry("loss term")
POLICY_LOSSES = Registry("policy loss")


class TokenInputs(NamedTuple):
  """What the learner hands the loss terms, all over [B, T] response tokens."""
  logprobs: jax.Array             # fp32 [B, T] log π_θ(y_t), with gradient
  old_logprobs: jax.Array         # fp32 [B, T] π_old, the ratio's denominator
  advantages: jax.Array           # fp32 [B] or [B, T]
  mask: jax.Array                 # bool [B, T]
  behaviour_logprobs: jax.Array   # fp32 [B, T] μ, the distribution that drew y_t
  entropy: jax.Array              # fp32 [B, T] H(π_θ(·|y_<t))
  tokens: jax.Array               # int32 [B, T]
  ref_logprobs: Any = None        # fp32 [B, T] π_ref, when a term needs it
  logits: Any = None              # fp32 [B, T, V] the student's, when a term needs them
  teacher_logits: Any = None      # fp32 [B, T, V] stop-gradient teacher's, when needed


# The optional inputs a term may declare in `needs`; the learner computes only those.
TERM_INPUTS = ("ref_logprobs", "logits", "teacher_logits")


@dataclasses.dataclass(frozen=True)
class Term:
  """A registered term with its hyper-parameters: hashable, so a static argument of jit."""
  name: str
  hparams: tuple = ()

  @property
  def needs(self) -> tuple[str, ...]:
    return tuple(LOSS_TERMS.info(self.name).get("needs", ()))

  @property
  def selects(self) -> bool:
    """Whether the term chooses tokens over the batch it is given (registered `selects`,
    a predicate on its hyper-parameters): it returns its choice as the metric `selected`
    and, given `selected=` (the choice made over a larger batch), uses that instead."""
    predicate = LOSS_TERMS.info(self.name).get("selects")
    return bool(predicate and predicate(**dict(self.hparams)))

  def __call__(self, x: TokenInputs, *, rng: jax.Array, selected=None):
    extra = {"selected": selected} if self.selects else {}
    return LOSS_TERMS.get(self.name)(x, rng=rng, **dict(self.hparams), **extra)


def sum_terms(terms: tuple[Term, ...], x: TokenInputs, *, rng: jax.Array, selected=None):
  """(Σ per-token losses [B, T] fp32, merged metrics) of `terms`, in order. The terms that
  select take their choice from `selected` ({term name: choice}; None: each chooses over
  `x`) and the choices come back as metrics["selected"] (same form)."""
  total, metrics, chosen = jnp.zeros(x.mask.shape, jnp.float32), {}, {}
  for term in terms:
    per_token, term_metrics = term(x, rng=rng, selected=(selected or {}).get(term.name))
    if term.selects:
      chosen[term.name] = term_metrics.pop("selected")
    if per_token is not None:
      total = total + per_token
    metrics.update(term_metrics)
  if chosen:
    metrics["selected"] = chosen
  return total, metrics


def _loss_selects(loss: str) -> bool:
  """Whether the policy loss chooses its tokens (it takes `selected`: Clip-Cov, KL-Cov)."""
  return "selected" in inspect.signature(POLICY_LOSSES.get(loss)).parameters


def _policy_selects(*, loss: str, token_mask: str = "none", **_) -> bool:
  return _loss_selects(loss) or token_mask != "none"


@LOSS_TERMS.register("policy", selects=_policy_selects)
def policy_term(x: TokenInputs, *, rng, loss: str, is_correction: str = "none",
                is_cap: float = 2.0, is_lower: float = 0.5, is_upper: float = 2.0,
                token_mask: str = "none", forking_fraction: float = 0.2, selected=None,
                **hparams):
  """The named policy loss (`POLICY_LOSSES`: PPO, GSPO, PG, Clip-Cov, KL-Cov, ...), each
  token's value times the detached weight of the importance correction `is_correction`
  (`importance.IS_CORRECTIONS`, ratio π_old/μ with μ = `behaviour_logprobs`: C = is_cap,
  masked-IS bounds [is_lower, is_upper]; 1 for `none`). With a `token_mask`
  (`token_masks.TOKEN_MASKS`: `forking`, the top `forking_fraction` of the tokens by
  entropy) it is kept only on the mask's tokens (metric token_mask_frac). The tokens the
  loss (Clip-Cov, KL-Cov) and the mask choose come back as the metric `selected`
  ({"loss", "token_mask"}), chosen over `x` unless `selected` gives them."""
  chosen = dict(selected or {})
  if _loss_selects(loss):
    hparams["selected"] = chosen.get("loss")
  per_token, metrics = POLICY_LOSSES.get(loss)(x.logprobs, x.old_logprobs, x.advantages,
                                               x.mask, rng=rng, **hparams)
  per_token = per_token * importance.importance_weights(
      x.old_logprobs, x.behaviour_logprobs, x.mask, correction=is_correction, cap=is_cap,
      lower=is_lower, upper=is_upper)
  if "selected" in metrics:
    chosen["loss"] = metrics["selected"]
  if token_mask != "none":
    if "token_mask" not in chosen:
      chosen["token_mask"] = TOKEN_MASKS.get(token_mask)(x.entropy, x.mask,
                                                         fraction=forking_fraction)
    per_token = jnp.where(chosen["token_mask"], per_token, 0.0)
    metrics["token_mask_frac"] = masked_mean(chosen["token_mask"], x.mask)
  out = {k: v for k, v in metrics.items() if jnp.ndim(v) == 0}
  if chosen:
    out["selected"] = chosen
  return per_token, out


@LOSS_TERMS.register("kl", needs=("ref_logprobs",))
def kl_term(x: TokenInputs, *, rng, coef: float, estimator: str = "k3"):
  """β·KL_t(π ‖ π_ref) (`policy_loss.kl_penalty`; metric kl_ref)."""
  del rng
  return policy_loss.kl_penalty(x.logprobs, x.ref_logprobs, x.mask, coef=coef,
                                estimator=estimator)


@LOSS_TERMS.register("entropy")
def entropy_term(x: TokenInputs, *, rng, coef: float):
  """−coef·H_t (`policy_loss.entropy_bonus`); the learner logs the entropy itself."""
  del rng
  return policy_loss.entropy_bonus(x.entropy, x.mask, coef=coef)[0], {}


@LOSS_TERMS.register("covariance_stats")
def covariance_stats_term(x: TokenInputs, *, rng):
  """No loss: the token covariance Cov(log π, A) statistics (`entropy_control`,
  arXiv 2505.22617), cov_mean and cov_top{q}_mean."""
  del rng
  cov = entropy_control.token_covariance(x.logprobs, x.advantages, x.mask)
  return None, entropy_control.covariance_stats(cov, x.mask)


@LOSS_TERMS.register("distill", needs=("logits", "teacher_logits"))
def distillation_term(x: TokenInputs, *, rng, **hparams):
  """coef·D(p_s, p*) towards the aggregated student/teacher target
  (`distillation.distillation_loss`; GKD arXiv 2306.13649)."""
  del rng
  return distillation.distillation_loss(x.logits, x.teacher_logits, x.tokens, x.mask, **hparams)
