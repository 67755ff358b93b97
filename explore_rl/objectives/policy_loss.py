"""Per-token policy-gradient losses (PPO / GRPO family) and composable KL and entropy terms.

Every loss in POLICY_LOSSES has one call form, so a trainer can call any of them
by name:

    fn(logprobs[B, T], old_logprobs[B, T], advantages[B] or [B, T], mask[B, T],
       *, rng=None, **hparams) -> (per_token_loss[B, T] fp32, metrics: dict[str, scalar])

`logprobs` are the current policy's log-probs of the sampled tokens, `old_logprobs`
those of the policy the ratio is taken against (the rollout policy of this PPO
step). Padding tokens get loss 0 and may hold garbage (even NaN) in every input:
they are replaced before any arithmetic so neither values nor gradients see them.
The per-token loss still has to be aggregated (`aggregation.py`). The KL-to-
reference and entropy terms return the same pair and are added to it.

Log-prob arithmetic is fp32 whatever the input dtype; exponents are clamped to
[-20, 20] (as verl) so that a stale token cannot overflow the ratio.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.shapes import assert_like, assert_rank
from explore_rl.registry import Registry

__all__ = [
    "KL_ESTIMATORS",
    "LOG_RATIO_CLAMP",
    "entropy_bonus",
    "fp32_inputs",
    "gspo_loss",
    "kl_penalty",
    "pg_loss",
    "ppo_loss",
    "ratio_metrics",
]

LOG_RATIO_CLAMP = 20.0
KL_ESTIMATORS = Registry("KL estimator")


def fp32_inputs(
    logprobs: jax.Array, old_logprobs: jax.Array, advantages: jax.Array, mask: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """fp32 (logp, old_logp, advantages, mask), all [B, T], zero under padding.

  advantages [B] (one per sequence) are broadcast over the tokens.
  """
  assert_like("logprobs", logprobs, old_logprobs=old_logprobs, mask=mask)
  assert_rank("advantages", advantages, {jnp.ndim(logprobs), jnp.ndim(logprobs) - 1})
  mask = mask.astype(jnp.float32)
  valid = mask > 0
  advantages = advantages.astype(jnp.float32)
  if advantages.ndim == logprobs.ndim - 1:
    advantages = advantages[..., None]
  advantages = jnp.broadcast_to(advantages, logprobs.shape)
  zero = lambda x: jnp.where(valid, x.astype(jnp.float32), 0.0)
  return zero(logprobs), zero(old_logprobs), zero(advantages), mask


def ratio_metrics(log_ratio: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
  """approx_kl, ratio_mean, ratio_max over the valid tokens.

  approx_kl is Schulman's k3 estimate of KL(old ‖ new) from tokens sampled by the
  old policy: (ρ − 1) − log ρ ≥ 0. ratio_max is 0 when no token is valid.
  """
  ratio = jnp.exp(log_ratio)
  return {
      "approx_kl": masked_mean(ratio - 1.0 - log_ratio, mask),
      "ratio_mean": masked_mean(ratio, mask),
      "ratio_max": jnp.max(jnp.where(mask > 0, ratio, 0.0)),
  }


def ppo_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    rng: jax.Array | None = None,
    clip_eps_low: float = 0.2,
    clip_eps_high: float = 0.2,
    dual_clip_c: float | None = 3.0,
    ratio_level: str = "token",
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """PPO-clip (arXiv 1707.06347) with clip-higher, dual clip and GSPO's sequence ratio.

      ρ   = exp(clamp(logp − old_logp, ±20))
      ℓ   = max(−Â·ρ, −Â·clip(ρ, 1 − ε_low, 1 + ε_high))   (DAPO clip-higher: ε_high > ε_low)
      ℓ   = min(ℓ, −Â·c)  where Â < 0                      (dual clip, arXiv 1912.09729;
                                                           verl `clip_ratio_c`, None = off)

  `ratio_level="sequence"` replaces ρ by GSPO's (arXiv 2507.18071) length-normalised
  sequence ratio s_i = exp(Σ_t m(logp − old_logp)/|y_i|), in its token form
  exp(logp − sg(logp) + sg(log s_i)): every token's value is s_i and its gradient
  s_i·∇logp_t. Pair it with `seq-mean-token-mean` aggregation and [B] advantages.

  Tokens drawn by a behaviour distribution μ ≠ π_old are corrected outside the loss, by
  a detached weight on its per-token value (objectives/importance.py, applied by the
  policy term of objectives/loss_terms.py). `rng` is unused (shared call form).

  Shapes: logprobs, old_logprobs, mask [B, T]; advantages [B] or [B, T]. Returns
  (per_token_loss [B, T] fp32, metrics): clip_frac (tokens where the clip is active),
  clip_frac_lower (dual clip active), approx_kl, ratio_mean, ratio_max.
  """
  del rng
  if dual_clip_c is not None and not dual_clip_c > 1.0:
    raise ValueError(f"dual_clip_c must be > 1, got {dual_clip_c}")
  logp, old, adv, mask = fp32_inputs(logprobs, old_logprobs, advantages, mask)
  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # [B, T]
  if ratio_level == "sequence":
    seq_log_ratio = masked_mean(log_ratio, mask, axis=-1)[:, None]  # [B, 1]
    log_ratio = logp - jax.lax.stop_gradient(logp) + jax.lax.stop_gradient(seq_log_ratio)
  elif ratio_level != "token":
    raise ValueError(f"ratio_level must be 'token' or 'sequence', got {ratio_level!r}")
  ratio = jnp.exp(log_ratio)
  pg1 = -adv * ratio
  pg2 = -adv * jnp.clip(ratio, 1.0 - clip_eps_low, 1.0 + clip_eps_high)
  loss = jnp.maximum(pg1, pg2)
  metrics = {"clip_frac": masked_mean(pg2 > pg1, mask)}
  if dual_clip_c is not None:
    pg3 = -adv * dual_clip_c
    lower = (adv < 0) & (loss > pg3)
    loss = jnp.where(lower, pg3, loss)
    metrics["clip_frac_lower"] = masked_mean(lower, mask)
  loss = jnp.where(mask > 0, loss, 0.0)
  return loss, {**metrics, **ratio_metrics(log_ratio, mask)}


def gspo_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    rng: jax.Array | None = None,
    clip_eps_low: float = 3e-4,
    clip_eps_high: float = 4e-4,
    dual_clip_c: float | None = None,
    **hparams,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """GSPO (arXiv 2507.18071): `ppo_loss` with the sequence-level ratio and GSPO's clip range.

  Defaults ε_low = 3e-4, ε_high = 4e-4 and no dual clip are the paper's (and verl's
  `gspo` loss); the other keywords are `ppo_loss`'s.
  """
  return ppo_loss(logprobs, old_logprobs, advantages, mask, rng=rng, clip_eps_low=clip_eps_low,
                  clip_eps_high=clip_eps_high, dual_clip_c=dual_clip_c, ratio_level="sequence",
                  **hparams)


def pg_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    *,
    rng: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Vanilla (no-clip) policy gradient ℓ = −Â·ρ, ρ = exp(clamp(logp − old_logp, ±20)).

  ∇ℓ = −Â·ρ·∇logp: REINFORCE when logp = old_logp, importance-weighted otherwise.
  Same shapes and metrics as `ppo_loss` (without the clip fractions). `rng` is unused
  (shared call form).
  """
  del rng
  logp, old, adv, mask = fp32_inputs(logprobs, old_logprobs, advantages, mask)
  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  loss = jnp.where(mask > 0, -adv * jnp.exp(log_ratio), 0.0)
  return loss, ratio_metrics(log_ratio, mask)


@KL_ESTIMATORS.register("k1")
def _k1(log_ratio_ref: jax.Array) -> jax.Array:
  return log_ratio_ref


@KL_ESTIMATORS.register("k2")
def _k2(log_ratio_ref: jax.Array) -> jax.Array:
  return 0.5 * log_ratio_ref**2


@KL_ESTIMATORS.register("k3")
def _k3(log_ratio_ref: jax.Array) -> jax.Array:
  neg = jnp.clip(-log_ratio_ref, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # ref − logp
  return jnp.exp(neg) - neg - 1.0


def kl_penalty(
    logprobs: jax.Array,
    ref_logprobs: jax.Array,
    mask: jax.Array,
    *,
    coef: float,
    estimator: str = "k3",
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """β·KL_t(π ‖ π_ref) per sampled token, with Schulman's estimators (x = logp − ref):

      k1 = x;   k2 = ½x²;   k3 = exp(−x) − (−x) − 1   (exponent clamped to [−20, 20])

  k1 is unbiased but signed, k2 is low variance, k3 is unbiased and ≥ 0 (GRPO,
  arXiv 2402.03300, eq. 4). As a loss term k1 has zero expected gradient (E_π[∇log π] = 0):
  it estimates the KL but does not pull π towards π_ref (the trainer warns at start-up).
  Shapes [B, T]; returns (coef·KL_t [B, T] fp32,
  {"kl_ref": masked mean of KL_t}); add the first part to a policy loss.
  """
  assert_like("logprobs", logprobs, ref_logprobs=ref_logprobs, mask=mask)
  mask = mask.astype(jnp.float32)
  valid = mask > 0
  log_ratio = jnp.where(valid, logprobs.astype(jnp.float32), 0.0) - jnp.where(
      valid, ref_logprobs.astype(jnp.float32), 0.0)
  kl = jnp.where(valid, KL_ESTIMATORS.get(estimator)(log_ratio), 0.0)
  return coef * kl, {"kl_ref": masked_mean(kl, mask)}


def entropy_bonus(
    entropy: jax.Array, mask: jax.Array, *, coef: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """ℓ_t = −coef·H_t, H_t = −Σ_v π(v) log π(v) per token (the learner computes it from logits).

  The PPO entropy bonus (arXiv 1707.06347, eq. 9). Cui et al. (arXiv 2505.22617)
  find it does not prevent entropy collapse; it is here as a baseline.

  Shapes [B, T]; returns (per_token_loss [B, T] fp32, {"entropy": masked mean H}).
  """
  assert_like("entropy", entropy, mask=mask)
  mask = mask.astype(jnp.float32)
  entropy = jnp.where(mask > 0, entropy.astype(jnp.float32), 0.0)
  return -coef * entropy, {"entropy": masked_mean(entropy, mask)}
