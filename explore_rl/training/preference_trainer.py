"""DPO, HyPO and online DPO: preference updates on (chosen, rejected) pairs.

`trainer="preference"` (configs/dpo.py, configs/hypo.py, configs/online_dpo.py) reuses the
RL trainer's metrics, evaluation, checkpoints and loop (`RLTrainer`). `preference.method`:

  dpo         offline DPO (arXiv 2305.18290): each step a mini-batch of
              `preference.pairs_per_step` pairs of the fixed dataset `preference.data` (JSONL or
              TFDS, `tasks/preference_pairs.py`; made by training/preference_data.py from an SFT
              prior's verified samples), one update; nothing is sampled during training
              (`offline_step`; held-out evaluation still samples).
  hypo        HyPO (arXiv 2406.01462): the same offline DPO mini-batch, plus λ·KL̂(π ‖ π_ref)
              on online samples: each step the current policy samples N responses for each
              of B prompts of the task's stream (`rollout.*`, the prompt distribution of the
              data), unlabeled for the loss (the verifier's rewards are logged only); the KL's
              gradient by REINFORCE with a leave-one-out baseline (`hypo_kl_surrogate`).
  online_dpo  online DPO: the pairs are each step's own samples, split by the verifier into
              correct (reward >= 1) and incorrect; up to `preference.pairs_per_prompt` pairs
              (y⁺, y⁻) of the same prompt, drawn without reuse (`build_pairs`).

The loss, one full-batch optimizer update per step:
  L = mean_pairs −log σ(β[(log π(y⁺) − log π_ref(y⁺)) − (log π(y⁻) − log π_ref(y⁻))])
      (+ λ · mean_b KL̂_b(π ‖ π_ref) over the N online samples of each prompt, HyPO)
with sequence log-probs Σ_t log π(y_t) at the rollout temperature and π_ref the initial
policy (frozen; also after a resume). Offline pairs are encoded as SFT encodes responses
(`batches.encode`: the end-of-sequence token appended, as the sampler emits it). For hypo
and online_dpo the objective's advantage estimator still runs, for the logged advantage
metrics only (docs/algorithms.md, "Preference optimisation").
"""
from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.errors import ConfigError
from explore_rl.models.flops import sequence_flops, training_flops
from explore_rl.models.logprobs import logprobs_from_logits, response_logits, score_responses
from explore_rl.objectives.preference import dpo_loss, hypo_kl_surrogate
from explore_rl.sampling.rollout import ScoredRollout
from explore_rl.tasks.preference_pairs import load_pairs
from explore_rl.training.batches import TokenBatch, encode, encode_responses
from explore_rl.training.flops import add_flops
from explore_rl.training.rl import RLTrainer
from explore_rl.training.state import TrainState, apply_if_finite, grad_norm
from explore_rl.training.step import rl_step

METHODS = ("dpo", "hypo", "online_dpo")
DEFAULTS = dict(method="dpo", beta=0.1, kl_coef=0.1, data="", pairs_per_step=32,
                pairs_per_prompt=2)
# The keys a method does not read: setting one is an error, not a silent no-op.
UNREAD = {"dpo": ("kl_coef", "pairs_per_prompt"), "hypo": ("pairs_per_prompt",),
          "online_dpo": ("kl_coef", "data", "pairs_per_step")}


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


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer", "beta", "kl_coef",
                                             "kl_groups", "num_samples", "temperature"),
                   donate_argnums=(2,))
def preference_update(graphdef, optimizer, state: TrainState, prompt_tokens, prompt_valid,
                      tokens, mask, ref_seq_logps, chosen, rejected, valid, *, beta: float,
                      kl_coef: float, kl_groups: int, num_samples: int, temperature: float):
  """One DPO (+ HyPO KL) update on R rows.

  prompt_tokens/valid [R, P], tokens/mask [R, M], ref_seq_logps [R] (the reference's
  Σ_t log π_ref(y_t)), chosen/rejected int32 [K] rows, valid bool [K]. The DPO loss is
  the mean over valid pairs (0 without any); with kl_groups = G > 0 the last G·N rows are
  G groups of N = num_samples online samples, and kl_coef · mean over the groups of
  `hypo_kl_surrogate` is added.
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
    if kl_groups:
      online = slice(seq.shape[0] - kl_groups * num_samples, None)
      kl = jnp.mean(hypo_kl_surrogate(seq[online].reshape(kl_groups, num_samples),
                                      ref_seq_logps[online].reshape(kl_groups, num_samples)))
      loss = loss + kl_coef * kl
      metrics["kl_ref"] = jax.lax.stop_gradient(kl)
    return loss, metrics

  (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  new_state, finite = apply_if_finite(state, grads, loss, optimizer)
  metrics.update(loss=loss, grad_norm=grad_norm(grads), update_skipped=~finite)
  return new_state, metrics


def _update(run, batch: TokenBatch, chosen, rejected, valid, *, kl_groups: int = 0,
            num_samples: int = 1) -> dict:
  """`preference_update` on `batch`'s rows with π_ref's sequence log-probs (both passes'
  FLOPs counted, training/flops.py); its metrics."""
  c, p = run.config, run.pref
  temperature = float(c.rollout.temperature)
  ref_lp, _ = score_responses(run.policy.graphdef, run.pref_ref, *batch,
                              temperature=temperature)
  run.state, metrics = preference_update(
      run.policy.graphdef, run.parts.optimizer, run.state, *batch, ref_lp.sum(axis=1),
      jnp.asarray(chosen), jnp.asarray(rejected), jnp.asarray(valid), beta=float(p["beta"]),
      kl_coef=float(p["kl_coef"]), kl_groups=kl_groups, num_samples=num_samples,
      temperature=temperature)
  rows, m = batch.response_tokens.shape
  length = batch.prompt_tokens.shape[1] + m
  add_flops(run.counters, "reference", sequence_flops(run.policy.config, rows, length))
  add_flops(run.counters, "update", training_flops(run.policy.config, rows, length))
  out = {k: float(v) for k, v in to_host(metrics).items()}
  out["updates_skipped"] = int(out.pop("update_skipped"))
  return out


def offline_pairs(run, step: int) -> tuple[TokenBatch, np.ndarray, np.ndarray, np.ndarray]:
  """Step `step`'s mini-batch of K = `pairs_per_step` dataset pairs as 2K rows (the K
  chosen, then the K rejected responses) and (chosen rows, rejected rows, valid).

  Epochs over the dataset: position i of the stream is pair perm_e[i mod D] of epoch
  e = i // D, perm_e a permutation drawn from (seed, e): a function of the step alone,
  so a resumed run takes the same mini-batches."""
  pairs, k = run.pairs, int(run.pref["pairs_per_step"])
  d = pairs.prompt_tokens.shape[0]
  pos = step * k + np.arange(k)
  perms = {e: np.random.default_rng([run.config.seed, int(e), 3]).permutation(d)
           for e in np.unique(pos // d)}
  idx = np.asarray([perms[i // d][i % d] for i in pos])
  rows = np.concatenate([idx, idx])
  batch = TokenBatch(pairs.prompt_tokens[rows], pairs.prompt_valid[rows],
                     np.concatenate([pairs.chosen_tokens[idx], pairs.rejected_tokens[idx]]),
                     np.concatenate([pairs.chosen_mask[idx], pairs.rejected_mask[idx]]))
  return batch, np.arange(k, dtype=np.int32), np.arange(k, 2 * k, dtype=np.int32), \
      np.ones(k, bool)


def offline_step(run, step: int) -> dict:
  """Offline DPO's step: a mini-batch of the dataset's pairs, one update; nothing sampled."""
  t0 = time.perf_counter()
  out = _update(run, *offline_pairs(run, step))
  out["time_update"] = out["step_time"] = time.perf_counter() - t0
  run.counters["updates_skipped_total"] += out["updates_skipped"]
  out.update(run.counters)
  return out


def preference_epochs(run, scored: ScoredRollout, adv: np.ndarray, step: int, rng) -> dict:
  """The update component of hypo and online_dpo (`run.pref`: the validated
  `config.preference`) on the step's rollout: HyPO's offline mini-batch with the KL on the
  rollout's groups, or online DPO's pairs built from the rollout by the verifier."""
  del adv, rng
  ro, n = scored.batch, scored.num_samples
  online = TokenBatch(jnp.repeat(ro.prompt_tokens, n, axis=0),
                      jnp.repeat(ro.prompt_valid, n, axis=0), ro.tokens, ro.mask)
  if run.pref["method"] == "online_dpo":
    pairs = build_pairs(scored.correct, int(run.pref["pairs_per_prompt"]),
                        np.random.default_rng([run.config.seed, step, 2]))
    return _update(run, online, *pairs)
  offline, chosen, rejected, valid = offline_pairs(run, step)
  both = TokenBatch(*(jnp.concatenate([jnp.asarray(a), b]) for a, b in zip(offline, online)))
  return _update(run, both, chosen, rejected, valid, kl_groups=len(scored.problems),
                 num_samples=n)


def preference_settings(config) -> dict:
  """The validated `config.preference` block (ConfigError, one line, for a bad value)."""
  cfg = dict(config.get("preference", {}))
  unknown = sorted(set(cfg) - set(DEFAULTS))
  if unknown:
    raise ConfigError(f"preference takes no {', '.join(unknown)}; its keys: "
                      f"{', '.join(DEFAULTS)}")
  pref = {**DEFAULTS, **cfg}
  method = pref["method"]
  if method not in METHODS:
    raise ConfigError(f"preference.method={method!r}; valid: {', '.join(METHODS)}")
  unread = [k for k in UNREAD[method] if k in cfg]
  if unread:
    raise ConfigError(f"preference.method={method!r} does not read preference."
                      f"{', preference.'.join(unread)}: remove it")
  if method != "online_dpo" and not pref["data"]:
    raise ConfigError(f"preference.method={method!r} trains on offline pairs: set "
                      "preference.data to a JSONL file or TFDS directory (make "
                      "preference-data)")
  if method == "hypo" and config.rollout.num_samples < 2:
    raise ConfigError("preference.method='hypo' needs rollout.num_samples >= 2 (the KL's "
                      "leave-one-out baseline)")
  if not (int(pref["pairs_per_prompt"]) >= 1 and int(pref["pairs_per_step"]) >= 1
          and float(pref["beta"]) > 0 and float(pref["kl_coef"]) >= 0):
    raise ConfigError("preference: need pairs_per_prompt >= 1, pairs_per_step >= 1, "
                      f"beta > 0 and kl_coef >= 0, got {cfg}")
  return pref


class EncodedPairs(NamedTuple):
  """A dataset's D pairs as arrays: prompts left-padded, responses right-padded (+ EOS)."""
  prompt_tokens: np.ndarray    # int32 [D, P]
  prompt_valid: np.ndarray     # bool  [D, P]
  chosen_tokens: np.ndarray    # int32 [D, M]
  chosen_mask: np.ndarray      # bool  [D, M]
  rejected_tokens: np.ndarray  # int32 [D, M]
  rejected_mask: np.ndarray    # bool  [D, M]


def encode_pairs(pairs, tokenizer, *, prompt_len: int, response_len: int,
                 source: str) -> EncodedPairs:
  """A dataset's pairs as the sampler's arrays (`batches.encode`).

  A response longer than `response_len` tokens is refused (ConfigError naming the file):
  cutting it would train on a different response. One of exactly `response_len` tokens
  keeps no end token, as a sampled response that ran out of room."""
  chosen, rejected = [p.chosen for p in pairs], [p.rejected for p in pairs]
  long = [r for r in chosen + rejected if len(tokenizer.encode(r)) > response_len]
  if long:
    raise ConfigError(f"{source}: {len(long)} response(s) longer than max_response_len="
                      f"{response_len} tokens, e.g. {long[0][:60]!r}")
  try:
    batch = encode(tokenizer, [p.prompt for p in pairs], chosen, prompt_len=prompt_len,
                   response_len=response_len)
  except ValueError as e:   # a prompt over max_prompt_len, a character out of the alphabet
    raise ConfigError(f"{source}: {e}") from None
  return EncodedPairs(*batch, *encode_responses(tokenizer, rejected, response_len))


class PreferenceTrainer(RLTrainer):
  """The RL trainer with the preference update component (`config.preference`); offline
  DPO replaces the whole step (`offline_step`)."""
  update = staticmethod(preference_epochs)

  def __init__(self, config, workdir: str, **kwargs):
    self.pref = preference_settings(config)                  # before any work
    data = self.pref["data"]
    pairs = load_pairs(data) if data else None
    super().__init__(config, workdir, **kwargs)
    # π_ref: the initial policy. A copy: the update donates the train state's buffers.
    self.pref_ref = jax.tree.map(jnp.copy, self.policy.params)
    if pairs is not None:
      self.pairs = encode_pairs(
          pairs, self.policy.tokenizer, prompt_len=config.max_prompt_len,
          response_len=config.max_response_len, source=data)

  def step(self, step: int) -> dict:
    if self.pref["method"] == "dpo":
      return offline_step(self, step)
    return rl_step(self, step)


def train_preference(config, workdir: str, *, progress: bool = True,
                     allow_method_change: bool = False) -> dict:
  return PreferenceTrainer(config, workdir, progress=progress,
                           allow_method_change=allow_method_change).run()
