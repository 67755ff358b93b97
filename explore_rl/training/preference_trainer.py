"""DPO and HyPO on preference pairs the task's verifier builds from each sampled group.

`trainer="preference"` (configs/dpo.py, configs/hypo.py) reuses the RL trainer's
rollout, metrics, evaluation, checkpoints and loop (`RLTrainer`) with its own update
component (`preference_epochs`). Each step:

  1. the trained policy samples N responses for each of B prompts (`rollout.sampler`);
  2. the verifier splits each group into correct (reward >= 1) and incorrect responses;
     up to `preference.pairs_per_prompt` pairs (y⁺ correct, y⁻ incorrect, the same prompt)
     are drawn without reuse (`build_pairs`); groups that are all correct or all wrong
     give no pair;
  3. one full-batch optimizer update on
       DPO  (arXiv 2305.18290)  L = mean_pairs −log σ(β[(log π(y⁺) − log π_ref(y⁺))
                                                   − (log π(y⁻) − log π_ref(y⁻))])
       HyPO (arXiv 2406.01462)  L = DPO + λ · mean_b KL̂_b(π ‖ π_ref), the KL over the N
                                online samples of every group, its gradient by REINFORCE
                                with a leave-one-out baseline (`hypo_kl_surrogate`),
     with sequence log-probs Σ_t log π(y_t) at the rollout temperature and π_ref the
     initial policy (frozen; also after a resume).

The pairs are on-policy (online DPO); HyPO's "offline" pairs are these same pairs, so
here HyPO differs from DPO only by the KL term on all samples (docs/algorithms.md,
"Preference optimisation"). The objective's advantage estimator still runs, for the
logged advantage metrics only.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from explore_rl.distributed import to_host
from explore_rl.errors import ConfigError
from explore_rl.models.logprobs import logprobs_from_logits, response_logits, score_responses
from explore_rl.objectives.preference import dpo_loss, hypo_kl_surrogate
from explore_rl.sampling.rollout import ScoredRollout
from explore_rl.training.rl import RLTrainer
from explore_rl.training.state import TrainState, apply_if_finite

METHODS = ("dpo", "hypo")
DEFAULTS = dict(method="dpo", beta=0.1, kl_coef=0.1, pairs_per_prompt=2)


def build_pairs(correct: np.ndarray, pairs_per_prompt: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Preference pairs from verified groups: (chosen rows, rejected rows, valid), each [B*K].

  correct: bool [B, N], sample j of prompt b is row b*N + j of the rollout. For each
  prompt, min(K, #correct, #incorrect) pairs of a correct and an incorrect sample of
  that prompt, each sample used at most once (both sides shuffled by `rng`). Slots
  without a pair are (0, 0, False): a static shape for the jitted update.
  """
  b, n = correct.shape
  k = pairs_per_prompt
  chosen = np.zeros(b * k, np.int32)
  rejected = np.zeros(b * k, np.int32)
  valid = np.zeros(b * k, bool)
  for g in range(b):
    good = rng.permutation(np.flatnonzero(correct[g]))
    bad = rng.permutation(np.flatnonzero(~correct[g]))
    m = min(k, good.size, bad.size)
    chosen[g * k:g * k + m] = g * n + good[:m]
    rejected[g * k:g * k + m] = g * n + bad[:m]
    valid[g * k:g * k + m] = True
  return chosen, rejected, valid


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer", "method", "beta",
                                             "kl_coef", "num_samples", "temperature"),
                   donate_argnums=(2,))
def preference_update(graphdef, optimizer, state: TrainState, prompt_tokens, prompt_valid,
                      tokens, mask, ref_seq_logps, chosen, rejected, valid, *, method: str,
                      beta: float, kl_coef: float, num_samples: int, temperature: float):
  """One DPO / HyPO update on a rollout of R = B·N rows.

  prompt_tokens/valid [R, P], tokens/mask [R, M], ref_seq_logps [R] (the reference's
  Σ_t log π_ref(y_t)), chosen/rejected int32 [B·K] rows, valid bool [B·K]. The DPO loss
  is the mean over valid pairs (0 without any); HyPO adds kl_coef · mean over the B groups
  of `hypo_kl_surrogate` on their N samples.
  """
  v = valid.astype(jnp.float32)
  num_pairs = v.sum()

  def loss_fn(params):
    logits = response_logits(graphdef, params, prompt_tokens, prompt_valid, tokens, mask,
                             temperature=temperature)
    logp, entropy = logprobs_from_logits(logits, tokens, mask)
    seq = logp.sum(axis=1)                                                  # [R]
    pc, pr, rc, rr = seq[chosen], seq[rejected], ref_seq_logps[chosen], ref_seq_logps[rejected]
    per_pair = dpo_loss(pc, pr, rc, rr, beta=beta)
    dpo = jnp.sum(per_pair * v) / jnp.maximum(num_pairs, 1.0)
    margin = jax.lax.stop_gradient(beta * ((pc - rc) - (pr - rr)))
    metrics = {"dpo_loss": dpo, "pairs": num_pairs,
               "reward_margin": jnp.sum(margin * v) / jnp.maximum(num_pairs, 1.0),
               "reward_accuracy": jnp.sum((margin > 0) * v) / jnp.maximum(num_pairs, 1.0),
               "entropy": entropy.sum() / jnp.maximum(mask.sum(), 1)}
    loss = dpo
    if method == "hypo":
      kl = jnp.mean(hypo_kl_surrogate(seq.reshape(-1, num_samples),
                                      ref_seq_logps.reshape(-1, num_samples)))
      loss = loss + kl_coef * kl
      metrics["kl_ref"] = jax.lax.stop_gradient(kl)
    return loss, metrics

  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  new_state, finite = apply_if_finite(state, grads, loss, optimizer)
  metrics.update(loss=loss, grad_norm=optax.global_norm(grads), update_skipped=~finite)
  return new_state, metrics


def preference_epochs(run, scored: ScoredRollout, adv: np.ndarray, step: int, rng) -> dict:
  """The preference update component: one full-batch DPO / HyPO update on the pairs the
  verifier builds from the step's groups (`run.pref`: the validated `config.preference`)."""
  del adv, rng
  c, p = run.config, run.pref
  ro, n = scored.batch, scored.num_samples
  prompt_tokens = jnp.repeat(ro.prompt_tokens, n, axis=0)
  prompt_valid = jnp.repeat(ro.prompt_valid, n, axis=0)
  temperature = float(c.rollout.temperature)
  ref_lp, _ = score_responses(run.policy.graphdef, run.pref_ref, prompt_tokens,
                              prompt_valid, ro.tokens, ro.mask, temperature=temperature)
  chosen, rejected, valid = build_pairs(scored.correct, int(p["pairs_per_prompt"]),
                                        np.random.default_rng([c.seed, step, 2]))
  run.state, metrics = preference_update(
      run.policy.graphdef, run.parts.optimizer, run.state, prompt_tokens, prompt_valid,
      ro.tokens, ro.mask, ref_lp.sum(axis=1), jnp.asarray(chosen), jnp.asarray(rejected),
      jnp.asarray(valid), method=p["method"], beta=float(p["beta"]),
      kl_coef=float(p["kl_coef"]), num_samples=n, temperature=temperature)
  out = {k: float(v) for k, v in to_host(metrics).items()}
  out["updates_skipped"] = int(out.pop("update_skipped"))
  out["_train_tokens"] = float(scored.host.mask.sum() + scored.host.prompt_valid.sum() * n)
  return out


def preference_settings(config) -> dict:
  """The validated `config.preference` block (ConfigError, one line, for a bad value)."""
  cfg = dict(config.get("preference", {}))
  unknown = sorted(set(cfg) - set(DEFAULTS))
  if unknown:
    raise ConfigError(f"preference takes no {', '.join(unknown)}; its keys: "
                      f"{', '.join(DEFAULTS)}")
  pref = {**DEFAULTS, **cfg}
  if pref["method"] not in METHODS:
    raise ConfigError(f"preference.method={pref['method']!r}; valid: {', '.join(METHODS)}")
  if pref["method"] == "hypo" and config.rollout.num_samples < 2:
    raise ConfigError("preference.method='hypo' needs rollout.num_samples >= 2 (the KL's "
                      "leave-one-out baseline)")
  if not (int(pref["pairs_per_prompt"]) >= 1 and float(pref["beta"]) > 0):
    raise ConfigError(f"preference: need pairs_per_prompt >= 1 and beta > 0, got {cfg}")
  return pref


class PreferenceTrainer(RLTrainer):
  """The RL trainer with the DPO / HyPO update component (`config.preference`)."""
  update = staticmethod(preference_epochs)

  def __init__(self, config, workdir: str, **kwargs):
    self.pref = preference_settings(config)                  # before any work
    super().__init__(config, workdir, **kwargs)
    # π_ref: the initial policy. A copy: the update donates the train state's buffers.
    self.pref_ref = jax.tree.map(jnp.copy, self.policy.params)


def train_preference(config, workdir: str, *, progress: bool = True,
                     allow_method_change: bool = False) -> dict:
  return PreferenceTrainer(config, workdir, progress=progress,
                           allow_method_change=allow_method_change).run()
