"""Privileged self-distillation: logit aggregation, per-token divergences, distillation losses.

One model, two prompts (docs/algorithms.md, "Self-distillation"):
the student sees the problem, the teacher the problem plus its solution ("use it
only as a hint"). Both score the same generated tokens, giving student logits z_s
and teacher logits z_t [B, T, V]. The training target p* is an *aggregation* of
the two: `poe` reweights the student by the teacher (zero wherever the student is
zero), `interp` moves a fixed geometric fraction s towards the teacher, `trust_region`
as far towards it as a per-token KL budget allows (the whole way where the two are
close, a capped step where they differ most). The loss is a per-token divergence
between the student and p*, masked to the generated tokens; by default the forward
KL(p* ‖ p_s), whose logit gradient p_s − p* follows the target's shape. Under the
reverse KL the student's share of p* cancels from the gradient and every aggregation
trains like the teacher alone (`teacher_only_gradient`).

    aggregate_logits  z_s, z_t [..., V] -> log p* [..., V]   (poe, interp, trust_region, teacher)
    token_divergence  z_s, log p* [..., V] -> D [...]        (forward_kl, reverse_kl, jsd)
    distillation_loss the full-vocabulary loss in the project's (per_token_loss[B, T], metrics)
                      form, or its sampled-token (policy-gradient) form
    sampled_token_distill_loss / distill_token_advantages
                      the sampled-token form on gathered [B, T] log-probs only: advantage
                      A_t = log p*(y_t) − log p_s(y_t), detached, times −log p_s(y_t)

Gradients reach only the student: the target is wrapped in `stop_gradient`.
All arithmetic is fp32 whatever the input dtype. Padding positions (mask 0) may hold
garbage (even NaN) in every input; they are replaced before any arithmetic, so
neither values nor gradients see them.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from explore_rl.objectives.aggregation import masked_mean
from explore_rl.objectives.shapes import assert_ints, assert_like

__all__ = [
    "AGGREGATION_METHODS",
    "DIVERGENCES",
    "TRUST_REGION_TOL",
    "aggregate_logits",
    "distill_token_advantages",
    "distillation_loss",
    "kl_divergence",
    "sampled_token_distill_loss",
    "teacher_only_gradient",
    "token_divergence",
    "trust_region_coefficient",
]

AGGREGATION_METHODS = ("poe", "interp", "trust_region", "teacher")
DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")
TRUST_REGION_TOL = 1e-3
# Bisection halves [0, 1] each step; two steps beyond 2^-n <= tol leave a margin of
# 3/4·tol, so that `s + tol` is infeasible by a clear amount, not by rounding.
_BISECTION_STEPS = math.ceil(math.log2(1.0 / TRUST_REGION_TOL)) + 2
_LOG_CLAMP = 20.0
# What ∇θ KL(p_s ‖ p*) reduces to for each aggregation (`teacher_only_gradient`).
_REVERSE_KL_GRADIENTS = {"poe": "alpha·∇[KL(p_s‖p_t) + H(p_s)]",
                         "interp": "s·∇KL(p_s‖p_t)",
                         "trust_region": "s_t·∇KL(p_s‖p_t) per token (s_t smallest where "
                                         "teacher and student differ most)"}


def _geometric(la: jax.Array, lb: jax.Array, wa, wb) -> jax.Array:
  """wa·la + wb·lb with 0·(−inf) = 0: unnormalised log of p_a^wa · p_b^wb.

  la, lb are log-probs (finite or −inf); wa, wb ≥ 0 scalars or arrays broadcasting
  against them. A token is −inf when a factor with positive weight is zero. Inner
  `where`s keep −inf out of the arithmetic, so gradients stay finite.
  """
  fa, fb = jnp.isfinite(la), jnp.isfinite(lb)
  out = wa * jnp.where(fa, la, 0.0) + wb * jnp.where(fb, lb, 0.0)
  dead = (~fa & (wa > 0)) | (~fb & (wb > 0))
  return jnp.where(dead, -jnp.inf, out)


def _normalise(unnorm: jax.Array, fallback: jax.Array) -> jax.Array:
  """log_softmax over V; rows with no finite entry (disjoint supports) take `fallback`."""
  empty = ~jnp.any(jnp.isfinite(unnorm), axis=-1, keepdims=True)
  return jax.nn.log_softmax(jnp.where(empty, fallback, unnorm), axis=-1)


def kl_divergence(logp: jax.Array, logq: jax.Array) -> jax.Array:
  """KL(p ‖ q) = Σ_v p(v)(log p(v) − log q(v)) over the last axis, fp32: [..., V] -> [...].

  Terms with p(v) = 0 count 0 (also where q(v) = 0); p(v) > 0 = q(v) gives +inf.
  The log-ratio is computed under a double `where`, so −inf entries of either input
  reach no gradient.
  """
  logp, logq = logp.astype(jnp.float32), logq.astype(jnp.float32)
  p_pos = jnp.isfinite(logp)
  both = p_pos & jnp.isfinite(logq)
  diff = jnp.where(both, logp, 0.0) - jnp.where(both, logq, 0.0)
  p = jnp.exp(jnp.where(p_pos, logp, -jnp.inf))
  terms = jnp.where(both, p * diff, jnp.where(p_pos, jnp.inf, 0.0))
  return jnp.sum(terms, axis=-1)


def _interp(ls: jax.Array, lt: jax.Array, s) -> jax.Array:
  """log softmax(z_s + s·(z_t − z_s)) from student/teacher log-probs; s broadcasts to [..., 1].

  softmax is invariant to a per-row shift and log-probs are the logits shifted by
  their log-normaliser, so (1 − s)·log p_s + s·log p_t gives the same distribution.
  """
  s = jnp.asarray(s, jnp.float32)
  return _normalise(_geometric(ls, lt, 1.0 - s, s), ls)


def trust_region_coefficient(student_logits: jax.Array, teacher_logits: jax.Array, *,
                             kl_budget: float) -> jax.Array:
  """Per token the largest s ∈ [0, 1] with KL(p*_s ‖ p_s) ≤ kl_budget: [..., V] -> s [...].

      p*_s = softmax(z_s + s·(z_t − z_s)),   KL(s) = KL(p*_s ‖ p_s)

  KL(0) = 0 and dKL/ds = s·Var_{p*_s}(z_t − z_s) ≥ 0 (p*_s is an exponential family
  in s), so the feasible set is an interval [0, s_max]. s = 1 when the teacher is
  within budget; otherwise bisection for a fixed number of steps (jittable) keeps
  the feasible lower end `lo` and an infeasible upper end `hi` with hi − lo < 1e-3
  (`TRUST_REGION_TOL`); the result is `lo`: within budget, and s + 1e-3 exceeds it.
  The trust-region variant of the aggregation (docs/algorithms.md; [ours]).
  """
  assert_like("student_logits", student_logits, teacher_logits=teacher_logits)
  ls = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
  lt = jax.nn.log_softmax(teacher_logits.astype(jnp.float32), axis=-1)
  return _trust_region_s(ls, lt, kl_budget)


def _trust_region_s(ls: jax.Array, lt: jax.Array, kl_budget: float) -> jax.Array:
  kl_at = lambda s: kl_divergence(_interp(ls, lt, s[..., None]), ls)
  batch = ls.shape[:-1]
  teacher_ok = kl_at(jnp.ones(batch, jnp.float32)) <= kl_budget

  def step(_, bounds):
    lo, hi = bounds
    mid = 0.5 * (lo + hi)
    ok = kl_at(mid) <= kl_budget
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

  lo, _ = jax.lax.fori_loop(0, _BISECTION_STEPS, step,
                            (jnp.zeros(batch, jnp.float32), jnp.ones(batch, jnp.float32)))
  return jnp.where(teacher_ok, 1.0, lo)


def aggregate_logits(student_logits: jax.Array, teacher_logits: jax.Array, *, method: str,
                     alpha: float = 1.0, s: float = 0.5, kl_budget: float = 0.1) -> jax.Array:
  """Normalised log-probs log p* [..., V] of the aggregated target ([ours]; docs/algorithms.md).

  With p_s = softmax(z_s), p_t = softmax(z_t), all in fp32:

  - `poe`:          p* ∝ p_s · p_t^α (product of experts). α = 0 gives the student;
                    p*(v) = 0 wherever p_s(v) = 0, so no token the student excludes
                    is pushed. Disjoint supports (p_s·p_t^α ≡ 0) fall back to p_s.
  - `interp`:       p* = softmax(z_s + s·(z_t − z_s)); s = 0 student, s = 1 teacher.
  - `trust_region`: `interp` with, per token, the largest s ∈ [0, 1] such that
                    KL(p* ‖ p_s) ≤ kl_budget (bisection to 1e-3 in s; s = 1 when the
                    teacher is within budget), see `trust_region_coefficient`.
  - `teacher`:      p* = p_t (the no-aggregation ablation).

  The seed's post lost its exact formula; docs/algorithms.md names this family.
  Shapes: student_logits, teacher_logits [..., V] (any dtype). Not stop-gradiented:
  the losses below detach the target themselves.
  """
  assert_like("student_logits", student_logits, teacher_logits=teacher_logits)
  ls = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
  lt = jax.nn.log_softmax(teacher_logits.astype(jnp.float32), axis=-1)
  return _aggregate(ls, lt, method=method, alpha=alpha, s=s, kl_budget=kl_budget)[0]


def _aggregate(ls, lt, *, method, alpha, s, kl_budget):
  """(log p*, per-token trust-region s or None) from student/teacher log-probs."""
  if method not in AGGREGATION_METHODS:
    raise ValueError(f"unknown aggregation method {method!r}; valid: {list(AGGREGATION_METHODS)}")
  if method == "teacher":
    return lt, None
  if method == "poe":
    if not alpha >= 0:
      raise ValueError(f"poe needs alpha >= 0, got {alpha}")
    return _normalise(_geometric(ls, lt, 1.0, jnp.float32(alpha)), ls), None
  if method == "interp":
    if not 0.0 <= s <= 1.0:
      raise ValueError(f"interp needs 0 <= s <= 1, got {s}")
    return _interp(ls, lt, s), None
  coef = _trust_region_s(ls, lt, kl_budget)
  return _interp(ls, lt, coef[..., None]), coef


def teacher_only_gradient(method: str, divergence: str, beta: float = 0.5) -> str | None:
  """The teacher-only gradient a (method, divergence) pair trains with, or None if p* shapes it.

  Under a reverse KL towards a target held constant (`reverse_kl`; `jsd` at β = 1;
  `sampled`, whose expected gradient is the reverse KL's), with p_s = p_θ:

      ∇θ KL(p_s ‖ p*) = Σ_v ∇p_s(v)·(log p_s(v) − log p*(v))        (Σ_v p_s ∇log p_s = 0)

  and log p* = c·sg(log p_s) + (teacher part) − log Z. log Z drops out (Σ_v ∇p_s(v) = 0),
  and the student's share c·log p_s only rescales the log p_s term, so:

      poe          log p* = log p_s + α·log p_t − log Z        → α·∇[KL(p_s‖p_t) + H(p_s)]
      interp       log p* = (1−s)·log p_s + s·log p_t − log Z  → s·∇KL(p_s‖p_t)
      trust_region interp with s_t per token                   → s_t·∇KL(p_s‖p_t)

  Each is the `teacher` update rescaled (poe: plus an entropy penalty), whatever the
  aggregation does to p*'s shape (docs/algorithms.md, "Self-distillation"). Returns that
  gradient as text for these pairs, None for the others (`teacher` itself, forward KL,
  jsd with β < 1).
  """
  reverse = divergence in ("reverse_kl", "sampled") or (divergence == "jsd" and beta == 1.0)
  return _REVERSE_KL_GRADIENTS.get(method) if reverse else None


def token_divergence(student_logits: jax.Array, target_logprobs: jax.Array, *, kind: str,
                     beta: float = 0.5) -> jax.Array:
  """Per-token divergence between p_s = softmax(z_s) and the target p* over the vocabulary.

  [..., V] -> [...] fp32:

  - `forward_kl`: KL(p* ‖ p_s) (mass covering; the SFT / classic KD direction);
  - `reverse_kl`: KL(p_s ‖ p*) (mode seeking; on-policy distillation);
  - `jsd`:        the generalized JSD of GKD (Agarwal et al., arXiv 2306.13649, eq. 1),
                  as TRL's `GKDTrainer.generalized_jsd_loss` computes it:
                      M = β·p* + (1 − β)·p_s,   JSD_β = β·KL(p* ‖ M) + (1 − β)·KL(p_s ‖ M).
                  β = 0 returns KL(p* ‖ p_s) (forward) and β = 1 KL(p_s ‖ p*) (reverse),
                  as TRL special-cases them. The general formula itself vanishes at
                  both ends (M equals one of the two); its slopes there give the same
                  assignment: JSD_β / β → KL(p* ‖ p_s) as β → 0 and
                  JSD_β / (1 − β) → KL(p_s ‖ p*) as β → 1.

  `beta` is a Python float (a static hyper-parameter). Gradients flow into both
  arguments; `distillation_loss` detaches the target.
  """
  assert_like("student_logits", student_logits, target_logprobs=target_logprobs)
  if kind not in DIVERGENCES:
    raise ValueError(f"unknown divergence {kind!r}; valid: {list(DIVERGENCES)}")
  ls = jax.nn.log_softmax(student_logits.astype(jnp.float32), axis=-1)
  lp = target_logprobs.astype(jnp.float32)
  if kind == "forward_kl" or (kind == "jsd" and beta == 0.0):
    return kl_divergence(lp, ls)
  if kind == "reverse_kl" or (kind == "jsd" and beta == 1.0):
    return kl_divergence(ls, lp)
  if not 0.0 < beta < 1.0:
    raise ValueError(f"jsd needs 0 <= beta <= 1, got {beta}")
  # log M = logsumexp(log β + log p*, log(1 − β) + log p_s); M > 0 wherever either is.
  # Where both are zero, M is zero too; computed on placeholders so that logaddexp's
  # gradient at (−inf, −inf) (NaN) never forms.
  either = jnp.isfinite(lp) | jnp.isfinite(ls)
  log_m = jnp.logaddexp(jnp.where(either, lp, 0.0) + math.log(beta),
                        jnp.where(either, ls, 0.0) + math.log1p(-beta))
  log_m = jnp.where(either, log_m, -jnp.inf)
  return beta * kl_divergence(lp, log_m) + (1.0 - beta) * kl_divergence(ls, log_m)


def _token_logprob(logprobs: jax.Array, tokens: jax.Array) -> jax.Array:
  return jnp.take_along_axis(logprobs, tokens[..., None].astype(jnp.int32), axis=-1)[..., 0]


def distill_token_advantages(student_logprobs: jax.Array, target_logprobs: jax.Array,
                             mask: jax.Array) -> jax.Array:
  """Per-token reward A_t = log p*(y_t) − log p_s(y_t), detached, 0 under padding: [B, T].

  The sampled-token (single-sample) estimate of −KL(p_s ‖ p*) at step t: its
  expectation under y_t ∼ p_s is minus the reverse KL. On-policy distillation
  (Agarwal et al., arXiv 2306.13649; Thinking Machines' "on-policy distillation")
  uses it as a per-token advantage, so any policy loss taking [B, T] advantages
  (`ppo_loss`, `pg_loss`, with their importance weights for off-policy tokens)
  runs self-distillation as a reward. Clamped to ±20.
  """
  assert_like("student_logprobs", student_logprobs, target_logprobs=target_logprobs)
  valid = mask.astype(jnp.float32) > 0
  adv = (jnp.where(valid, target_logprobs.astype(jnp.float32), 0.0)
         - jnp.where(valid, student_logprobs.astype(jnp.float32), 0.0))
  return jax.lax.stop_gradient(jnp.clip(adv, -_LOG_CLAMP, _LOG_CLAMP))


def sampled_token_distill_loss(logprobs: jax.Array, target_logprobs: jax.Array,
                               mask: jax.Array, *, coef: float = 1.0
                               ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Sampled-token distillation as a policy gradient: ℓ_t = −coef · sg(A_t) · log p_s(y_t).

      A_t = log p*(y_t) − log p_s(y_t)          (`distill_token_advantages`, detached)
      ∇ℓ_t = −coef · A_t · ∇log p_s(y_t)

  With y_t ∼ p_s, E[∇ℓ_t] = coef·∇KL(p_s ‖ p*) at step t (the score-function gradient
  of the reverse KL for a fixed target; the ∇ of −log p_s inside A has mean 0 and is
  dropped). Needs only gathered log-probs of the sampled tokens: logprobs (the student's,
  with gradient), target_logprobs (log p*(y_t), from `aggregate_logits` gathered at
  y_t, or a teacher's log-probs), mask — all [B, T]. Tokens sampled from another
  policy (aggregated sampling) need importance weights: use `distill_token_advantages`
  with `ppo_loss` / `pg_loss` and their `behaviour_logprobs`.

  Returns (per_token_loss [B, T] fp32, metrics): distill_advantage (masked mean A_t,
  an estimate of −KL(p_s ‖ p*)).
  """
  assert_like("logprobs", logprobs, target_logprobs=target_logprobs)
  valid = mask.astype(jnp.float32) > 0
  adv = distill_token_advantages(logprobs, target_logprobs, mask)
  logp = jnp.where(valid, logprobs.astype(jnp.float32), 0.0)
  loss = jnp.where(valid, -coef * adv * logp, 0.0)
  return loss, {"distill_advantage": masked_mean(adv, mask)}


def distillation_loss(student_logits: jax.Array, teacher_logits: jax.Array, tokens: jax.Array,
                      mask: jax.Array, *, method: str = "poe", divergence: str = "forward_kl",
                      alpha: float = 1.0, s: float = 0.5, kl_budget: float = 0.1,
                      beta: float = 0.5, coef: float = 1.0
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Masked self-distillation loss towards the aggregated target (GKD arXiv 2306.13649).

      log p* = sg(aggregate_logits(z_s, z_t; method, α, s, kl_budget))
      ℓ_t    = coef · D(p_s, p*)                                   divergence ∈ DIVERGENCES
      ℓ_t    = −coef · sg(log p*(y_t) − log p_s(y_t)) · log p_s(y_t)   divergence = "sampled"

  The first is the full-vocabulary form (`token_divergence`: forward_kl, reverse_kl,
  jsd with `beta`); "sampled" is the policy-gradient form of `sampled_token_distill_loss`
  (per-token reward). The default forward KL(p* ‖ p_s) has the logit gradient
  coef·(p_s − p*): the student moves towards the aggregate's shape. Towards `poe`,
  `interp` or `trust_region`, the reverse KL and "sampled" train like `teacher`
  (`teacher_only_gradient`). Gradients reach only the student logits: the target (and with
  it the teacher logits) is under `stop_gradient`. `coef` is the mixing weight with
  which the trainer adds this per-token loss to any RL objective's.

  Shapes: student_logits, teacher_logits [B, T, V] (position t predicts tokens[:, t]),
  tokens int [B, T] (only read by "sampled"), mask [B, T] (1 on generated tokens).
  Returns (per_token_loss [B, T] fp32, zero under padding; metrics, masked means over
  the generated tokens): distill_loss (D, or for "sampled" −A_t, without coef),
  distill_advantage (A_t, "sampled" only), kl_target_student = KL(p* ‖ p_s) (how far
  the target moves from the student), kl_teacher_student = KL(p_t ‖ p_s),
  target_token_logprob (log p*(y_t)), trust_region_s (the coefficient, trust_region only).
  """
  assert_like("student_logits", student_logits, teacher_logits=teacher_logits)
  assert_like("mask", mask, tokens=tokens, student_logits=student_logits[..., 0])
  assert_ints("tokens", tokens)
  valid_kinds = DIVERGENCES + ("sampled",)
  if divergence not in valid_kinds:
    raise ValueError(f"unknown divergence {divergence!r}; valid: {list(valid_kinds)}")
  valid = (mask.astype(jnp.float32) > 0)[..., None]
  zs = jnp.where(valid, student_logits.astype(jnp.float32), 0.0)  # [B, T, V]
  zt = jax.lax.stop_gradient(jnp.where(valid, teacher_logits.astype(jnp.float32), 0.0))
  ls = jax.nn.log_softmax(zs, axis=-1)
  lt = jax.nn.log_softmax(zt, axis=-1)
  target, tr_coef = _aggregate(jax.lax.stop_gradient(ls), lt, method=method, alpha=alpha, s=s,
                               kl_budget=kl_budget)
  target = jax.lax.stop_gradient(target)
  tok = jnp.where(valid[..., 0], tokens, 0)
  target_tok = _token_logprob(target, tok)  # [B, T]
  if divergence == "sampled":
    per_token, metrics = sampled_token_distill_loss(_token_logprob(ls, tok), target_tok, mask)
    metrics["distill_loss"] = -metrics["distill_advantage"]
  else:
    per_token = token_divergence(zs, target, kind=divergence, beta=beta)
    metrics = {"distill_loss": masked_mean(per_token, mask)}
  loss = jnp.where(valid[..., 0], coef * per_token, 0.0)
  sg_ls = jax.lax.stop_gradient(ls)
  metrics["kl_target_student"] = masked_mean(kl_divergence(target, sg_ls), mask)
  metrics["kl_teacher_student"] = masked_mean(kl_divergence(lt, sg_ls), mask)
  metrics["target_token_logprob"] = masked_mean(target_tok, mask)
  if tr_coef is not None:
    metrics["trust_region_s"] = masked_mean(tr_coef, mask)
  return loss, metrics
