"""Importance corrections for tokens drawn by a behaviour distribution μ other than π_old.

Samplers return the log-probs of the distribution that drew each token (μ: an explore
policy, a teacher aggregate p*, a dependent sampler's context, top-k/p filters) next to
π_old's (docs/design.md, "The rollout"). With ρ_t = π_old(y_t)/μ(y_t) and
ρ(y) = Π_t ρ_t the sequence ratio, a correction is a detached weight w that multiplies
the per-token policy loss (`objectives/loss_terms.py`, the policy term). Selected by
name (`config.objective.is_correction`, `IS_CORRECTIONS`); docs/algorithms.md,
"Importance corrections":

    none        w = 1
    token_tis   w_t = min(ρ_t, C)                       truncated IS per token (TIS)
    seq_tis     w_i = min(ρ(y_i), C)                    truncated IS per sequence
    token_mis   w_t = ρ_t·1[lower ≤ ρ_t ≤ upper]        masked IS: drops outlier tokens
    seq_mis     w_i = ρ(y_i)·1[lower ≤ ρ(y_i) ≤ upper]  masked IS: drops outlier sequences
    geometric   w_i = exp(mean_t log ρ_t)               GSPO-style length-normalised ratio

Defaults C = 2 (TIS, Yao et al. 2025, "Your efficient RL framework secretly brings you
off-policy RL training"; verl's `rollout_is_threshold` 2.0) and [lower, upper] =
[0.5, 2] (masked IS, Liu et al. 2025, "When speed kills stability"; verl's rejection
bounds: upper 2.0, lower 1/upper). The geometric mean is GSPO's sequence ratio
(arXiv 2507.18071) used as a weight.

Log-space: log ρ_t = clamp(log π_old − log μ, ±20) (`policy_loss.LOG_RATIO_CLAMP`), the
sequence log-ratio Σ_t m·log ρ_t is compared with log C / log bounds and exponentiated
only after clipping, so a long sequence cannot overflow. Padding (mask 0) may hold any
value, NaN included: it never reaches a weight of a valid token nor a statistic, and gets
weight 0.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.policy_loss import LOG_RATIO_CLAMP
from explore_rl.objectives.shapes import assert_like, assert_rank
from explore_rl.registry import Registry

__all__ = ["IS_CORRECTIONS", "importance_weights", "log_ratios", "mismatch_metrics"]

IS_CORRECTIONS = Registry("importance correction")


def log_ratios(old_logprobs: jax.Array, behaviour_logprobs: jax.Array,
               mask: jax.Array) -> jax.Array:
  """log ρ_t = clamp(log π_old(y_t) − log μ(y_t), ±20), fp32 [B, T], 0 under padding."""
  assert_rank("old_logprobs", old_logprobs, 2)
  assert_like("old_logprobs", old_logprobs, behaviour_logprobs=behaviour_logprobs, mask=mask)
  valid = mask > 0
  diff = (jnp.where(valid, old_logprobs.astype(jnp.float32), 0.0)
          - jnp.where(valid, behaviour_logprobs.astype(jnp.float32), 0.0))
  return jnp.clip(diff, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


# Each correction: (log ρ_t [B, T] fp32, mask [B, T] fp32, *its thresholds) ->
# (weight, kept, truncated) per unit: [B, T] for `level="token"`, [B] for "sequence";
# kept False where the unit is dropped, truncated True where the cap C is active.

def _sequence(log_rho, mask):
  """log ρ(y_i) = Σ_t m·log ρ_t, [B]."""
  return jnp.sum(log_rho * mask, axis=-1)


def _weights(w):
  """w with nothing dropped and nothing truncated."""
  return w, jnp.ones(w.shape, bool), jnp.zeros(w.shape, bool)


def _truncated(log_r, cap):
  """min(exp(log_r), cap), computed as exp(min(log_r, log cap))."""
  log_cap = math.log(cap)
  return jnp.exp(jnp.minimum(log_r, log_cap)), jnp.ones(log_r.shape, bool), log_r > log_cap


def _masked(log_r, lower, upper):
  """exp(log_r) where lower <= exp(log_r) <= upper, else 0 (dropped)."""
  lo, hi = math.log(lower), math.log(upper)
  kept = (log_r >= lo) & (log_r <= hi)
  return jnp.where(kept, jnp.exp(jnp.clip(log_r, lo, hi)), 0.0), kept, jnp.zeros(kept.shape,
                                                                                  bool)


@IS_CORRECTIONS.register("none", level="token", thresholds=())
def _none(log_rho, mask):
  return _weights(jnp.ones_like(log_rho))


@IS_CORRECTIONS.register("token_tis", level="token", thresholds=("cap",))
def _token_tis(log_rho, mask, *, cap):
  return _truncated(log_rho, cap)


@IS_CORRECTIONS.register("seq_tis", level="sequence", thresholds=("cap",))
def _seq_tis(log_rho, mask, *, cap):
  return _truncated(_sequence(log_rho, mask), cap)


@IS_CORRECTIONS.register("token_mis", level="token", thresholds=("lower", "upper"))
def _token_mis(log_rho, mask, *, lower, upper):
  return _masked(log_rho, lower, upper)


@IS_CORRECTIONS.register("seq_mis", level="sequence", thresholds=("lower", "upper"))
def _seq_mis(log_rho, mask, *, lower, upper):
  return _masked(_sequence(log_rho, mask), lower, upper)


@IS_CORRECTIONS.register("geometric", level="sequence", thresholds=())
def _geometric(log_rho, mask):
  return _weights(jnp.exp(_sequence(log_rho, mask) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)))


def check_thresholds(*, cap: float, lower: float, upper: float) -> None:
  """ValueError unless cap > 0 and 0 < lower <= upper (the config checks call it at start-up)."""
  if not cap > 0 or not 0 < lower <= upper:
    raise ValueError(f"importance thresholds need cap > 0 and 0 < lower <= upper, got "
                     f"cap={cap}, lower={lower}, upper={upper}")


def _units(old_logprobs, behaviour_logprobs, mask, correction, cap, lower, upper):
  """(log ρ [B, T], weight, kept, truncated, unit mask, level) of `correction`."""
  fn, info = IS_CORRECTIONS.get(correction), IS_CORRECTIONS.info(correction)
  check_thresholds(cap=cap, lower=lower, upper=upper)
  mask = mask.astype(jnp.float32)
  log_rho = log_ratios(old_logprobs, behaviour_logprobs, mask)
  given = dict(cap=cap, lower=lower, upper=upper)
  w, kept, truncated = fn(log_rho, mask, **{k: given[k] for k in info["thresholds"]})
  unit_mask = mask if info["level"] == "token" else (jnp.sum(mask, axis=-1) > 0).astype(
      jnp.float32)
  return log_rho, w, kept, truncated, unit_mask, info["level"]


def importance_weights(
    old_logprobs: jax.Array,
    behaviour_logprobs: jax.Array,
    mask: jax.Array,
    *,
    correction: str,
    cap: float = 2.0,
    lower: float = 0.5,
    upper: float = 2.0,
) -> jax.Array:
  """The detached weight of every token under `correction` (module docstring's table).

  old_logprobs (π_old), behaviour_logprobs (μ), mask: [B, T]. Returns fp32 [B, T]: the
  token's own weight (token-level corrections) or its sequence's (sequence-level), 0
  under padding and on dropped tokens/sequences. Multiply the per-token loss by it.
  """
  _, w, _, _, _, level = _units(old_logprobs, behaviour_logprobs, mask, correction, cap,
                                lower, upper)
  w = w if level == "token" else w[:, None]
  return jax.lax.stop_gradient(jnp.where(mask > 0, w, 0.0))


@functools.partial(jax.jit, static_argnames=("correction", "cap", "lower", "upper"))
def mismatch_metrics(
    old_logprobs: jax.Array,
    behaviour_logprobs: jax.Array,
    mask: jax.Array,
    *,
    correction: str,
    cap: float = 2.0,
    lower: float = 0.5,
    upper: float = 2.0,
) -> dict[str, jax.Array]:
  """How far μ is from π_old, and what `correction` made of it (fp32 scalars).

      mismatch/kl              mean over valid tokens of k3 = ρ_t − 1 − log ρ_t, Schulman's
                               estimate of KL(μ ‖ π_old) from tokens drawn by μ (≥ 0)
      mismatch/is_weight_mean  mean of the weights w over the correction's valid units
      mismatch/is_weight_max   their max (0 with no valid unit)
      mismatch/ess             effective sample size fraction (Σw)²/(n·Σw²) ∈ [0, 1]
                               over the n valid units (0 when every weight is 0)
      mismatch/masked_frac     fraction of valid units dropped (masked IS; else 0)
      mismatch/truncated_frac  fraction of valid units whose ratio exceeds C (TIS only)

  Units: valid tokens for token-level corrections, valid sequences (≥ 1 valid token) for
  sequence-level ones; the weights are those `importance_weights` applies. Shapes [B, T].
  """
  log_rho, w, kept, truncated, units, _ = _units(old_logprobs, behaviour_logprobs, mask,
                                               correction, cap, lower, upper)
  tokens = mask.astype(jnp.float32)
  w = jnp.where(units > 0, w, 0.0)
  n = jnp.sum(units)
  out = {
      "mismatch/kl": masked_mean(jnp.exp(log_rho) - 1.0 - log_rho, tokens),
      "mismatch/is_weight_mean": masked_mean(w, units),
      "mismatch/is_weight_max": jnp.max(w),
      "mismatch/ess": jnp.sum(w) ** 2 / jnp.maximum(n * jnp.sum(w ** 2), 1e-30),
      "mismatch/masked_frac": masked_mean(~kept, units),
  }
  if "cap" in IS_CORRECTIONS.info(correction)["thresholds"]:
    out["mismatch/truncated_frac"] = masked_mean(truncated, units)
  return out
