"""Preference optimisation on sequence log-probs: DPO and HyPO.

Inputs are sequence-level log-probs: Σ_t m_t·log π(y_t | x, y_<t) over a response's
tokens, computed by the learner (policy with gradient, reference frozen). The
losses are pure functions of them, fp32 whatever the input dtype.

    dpo_loss            per-pair [B] DPO loss (arXiv 2305.18290)
    dpo_metrics         implicit rewards, margins and accuracy of a batch of pairs
    hypo_kl_surrogate   per-prompt [B] surrogate of KL(π ‖ π_ref) on k online samples whose
                        gradient is REINFORCE with a leave-one-out baseline
    hypo_loss           HyPO (arXiv 2406.01462): DPO on offline pairs + λ·KL on online samples
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from explore_rl.objectives.shapes import assert_like, assert_rank

__all__ = [
    "dpo_loss",
    "dpo_metrics",
    "hypo_kl_surrogate",
    "hypo_loss",
]


def _f32(*xs: jax.Array) -> tuple[jax.Array, ...]:
  return tuple(jnp.asarray(x).astype(jnp.float32) for x in xs)


def _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps):
  assert_like("policy_chosen_logps", policy_chosen_logps,
              policy_rejected_logps=policy_rejected_logps, ref_chosen_logps=ref_chosen_logps,
              ref_rejected_logps=ref_rejected_logps)
  pc, pr, rc, rr = _f32(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                        ref_rejected_logps)
  return pc - rc, pr - rr


def dpo_loss(policy_chosen_logps: jax.Array, policy_rejected_logps: jax.Array,
             ref_chosen_logps: jax.Array, ref_rejected_logps: jax.Array, *,
             beta: float) -> jax.Array:
  """DPO (Rafailov et al., arXiv 2305.18290, eq. 7), per pair:

      ℓ_i = −log σ(β·[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))])

  computed as −log_sigmoid(·) (stable for large margins). Shapes: four [B] sequence
  log-probs (chosen y⁺, rejected y⁻); returns ℓ [B] fp32 (take the mean over pairs).
  Gradients flow into every argument: pass the reference's under stop_gradient or
  as plain arrays.
  """
  chosen, rejected = _margin(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                             ref_rejected_logps)
  return -jax.nn.log_sigmoid(beta * (chosen - rejected))


def dpo_metrics(policy_chosen_logps: jax.Array, policy_rejected_logps: jax.Array,
                ref_chosen_logps: jax.Array, ref_rejected_logps: jax.Array, *,
                beta: float) -> dict[str, jax.Array]:
  """Scalar metrics of a batch of [B] pairs, from DPO's implicit reward r = β·(log π − log π_ref):

  rewards_chosen, rewards_rejected (means of r(y⁺), r(y⁻)), reward_margin (mean of
  r(y⁺) − r(y⁻)), reward_accuracy (fraction of pairs with r(y⁺) > r(y⁻)), and
  dpo_loss (the mean of `dpo_loss`). Detached; the names follow TRL's DPO logs.
  """
  chosen, rejected = _margin(*jax.lax.stop_gradient(
      (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)))
  rc, rr = beta * chosen, beta * rejected
  return {
      "rewards_chosen": jnp.mean(rc),
      "rewards_rejected": jnp.mean(rr),
      "reward_margin": jnp.mean(rc - rr),
      "reward_accuracy": jnp.mean((rc > rr).astype(jnp.float32)),
      "dpo_loss": jnp.mean(-jax.nn.log_sigmoid(rc - rr)),
  }


def hypo_kl_surrogate(sample_logps: jax.Array, ref_logps: jax.Array) -> jax.Array:
  """Surrogate of KL(π ‖ π_ref) per prompt from k on-policy samples: [B, k] -> [B].

  With y_1..y_k ∼ π(·|x) i.i.d., r_j = log π(y_j) − log π_ref(y_j) (sequence log-probs)
  and the leave-one-out baseline b_j = (1/(k−1))·Σ_{i≠j} r_i:

      value    = (1/k)·Σ_j r_j                                 (unbiased estimate of KL)
      gradient = (1/k)·Σ_j (r_j − b_j)·∇log π(y_j)              (REINFORCE with LOO baseline)

  realised as sg(KL̂) + (1/k)·Σ_j sg(r_j − b_j)·(log π(y_j) − sg(log π(y_j))). The
  gradient is unbiased for ∇KL(π ‖ π_ref) = E_y[(log π(y) − log π_ref(y))·∇log π(y)]
  (the extra E[∇log π] term is zero, and b_j does not depend on y_j). Differentiating
  the plain estimate mean_j r_j instead would drop the score-function term and be
  wrong. (r_j − b_j) = k/(k−1)·(r_j − mean_i r_i), as RLOO (arXiv 2402.14740).

  The online KL term of HyPO (Song et al., arXiv 2406.01462; docs/algorithms.md
  marks the reconstruction). Needs k ≥ 2. Gradients reach sample_logps only.
  """
  assert_like("sample_logps", sample_logps, ref_logps=ref_logps)
  assert_rank("sample_logps", sample_logps, 2)
  if jnp.shape(sample_logps)[1] < 2:
    raise ValueError(f"sample_logps must be [B, k] with k >= 2, got {jnp.shape(sample_logps)}")
  logp, ref = _f32(sample_logps, ref_logps)
  k = logp.shape[1]
  r = jax.lax.stop_gradient(logp - ref)                    # [B, k]
  kl_hat = jnp.mean(r, axis=1)                             # [B]
  adv = (k / (k - 1)) * (r - kl_hat[:, None])              # r_j − b_j
  score = logp - jax.lax.stop_gradient(logp)               # value 0, gradient ∇log π
  return kl_hat + jnp.mean(adv * score, axis=1)


def hypo_loss(policy_chosen_logps: jax.Array, policy_rejected_logps: jax.Array,
              ref_chosen_logps: jax.Array, ref_rejected_logps: jax.Array,
              sample_logps: jax.Array, ref_sample_logps: jax.Array, *, beta: float,
              kl_coef: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """HyPO (Song et al., arXiv 2406.01462): offline DPO + λ·online KL to the reference.

      L = mean_i dpo_loss_i(offline pairs) + λ · mean_b KL̂_b(π ‖ π_ref)(online samples)

  with the KL term's gradient by REINFORCE with a leave-one-out baseline over the k
  samples of each prompt (`hypo_kl_surrogate`). Shapes: the four pair log-probs [B_pairs],
  sample_logps and ref_sample_logps [B_online, k] (sequence log-probs of k responses the
  current policy sampled for each of B_online prompts). Returns (scalar loss fp32,
  metrics): `dpo_metrics`, kl_ref (mean KL estimate) and hypo_loss.
  """
  dpo = jnp.mean(dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                          ref_rejected_logps, beta=beta))
  kl = jnp.mean(hypo_kl_surrogate(sample_logps, ref_sample_logps))
  loss = dpo + kl_coef * kl
  metrics = dpo_metrics(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps,
                        ref_rejected_logps, beta=beta)
  metrics["kl_ref"] = jax.lax.stop_gradient(kl)
  metrics["hypo_loss"] = jax.lax.stop_gradient(loss)
  return loss, metrics
