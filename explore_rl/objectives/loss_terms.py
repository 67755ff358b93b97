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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from explore_rl.objectives import distillation, entropy_control, policy_loss
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

  def __call__(self, x: TokenInputs, *, rng: jax.Array):
    return LOSS_TERMS.get(self.name)(x, rng=rng, **dict(self.hparams))


def sum_terms(terms: tuple[Term, ...], x: TokenInputs, *, rng: jax.Array):
  """(Σ per-token losses [B, T] fp32, merged metrics) of `terms`, in order."""
  total, metrics = jnp.zeros(x.mask.shape, jnp.float32), {}
  for term in terms:
    per_token, term_metrics = term(x, rng=rng)
    if per_token is not None:
      total = total + per_token
    metrics.update(term_metrics)
  return total, metrics


@LOSS_TERMS.register("policy")
def policy_term(x: TokenInputs, *, rng, loss: str, is_cap: float | None = None, **hparams):
  """The named policy loss (`POLICY_LOSSES`: PPO, GSPO, PG, Clip-Cov, KL-Cov, ...); with
  `is_cap` its tokens are weighted by min(π_old/μ, is_cap) (truncated importance sampling).
  Non-scalar metrics (Clip-Cov's selection mask) stay inside."""
  extra = {} if is_cap is None else dict(behaviour_logprobs=x.behaviour_logprobs, is_cap=is_cap)
  per_token, metrics = POLICY_LOSSES.get(loss)(x.logprobs, x.old_logprobs, x.advantages,
                                               x.mask, rng=rng, **hparams, **extra)
  return per_token, {k: v for k, v in metrics.items() if jnp.ndim(v) == 0}


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
