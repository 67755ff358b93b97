"""Rollout filters from the bandit library: design-selected and SmoothIGW-played responses.

docs/algorithms.md, "Two policies, dependent sampling, designed multisets" (the plug-in multiset
design; SmoothIGW); the selection rules are `explore_rl.bandits.rollout_design`. Both samplers
draw M = `candidates` > N independent responses per prompt with the jitted `generate` (as
`IndependentSampler`, so the drawing policy and its log-probs are the same), describe each
candidate i of prompt b by

a feature vector φ_i, chosen by `feature`:

  "judge"       φ_i = the embedding judge's MiniLM vector of the decoded response (unit norm;
                the same vectors the `embedding` judge clusters strategies with), so responses
                are far apart when their text says different things. The trainer supplies the
                embedder (`takes_embed`): sampling/ does not import rewards/.
  "token_mean"  φ_i = e̅_i / ‖e̅_i‖,  e̅_i = (1/|y_i|) Σ_{t ∈ y_i} E[y_{i,t}]  (`features`): the
                mean of the response's token embeddings, E = `params["embed_tokens"]["embedding"]`
                [V, D] of the trained policy (EOS included, pads excluded). Cheap and needs no
                text, but a bag of embeddings: two responses built of the same tokens get the
                same φ whatever their order, so it separates vocabulary, not structure.

And by

  an estimate  r̂_i = (1/|y_i|) Σ_t log π_θ(y_{i,t} | x, y_{i,<t})   (`estimate="logprob"`),

the trained policy's mean token log-prob on the plain prompt (its confidence; no verifier
needed), or r̂_i = the verifier's reward (`estimate="reward"`: the sampler then holds the run's
task, `takes_task`, and scores the M candidates on the host; the trainer scores the kept ones
again).

`design_select` keeps, per prompt, the N rows the design picks (a set: N distinct candidates,
`rollout_design.design_select`) or N uniformly random distinct ones (`selector="random"`, the
control, `random_select`); `smooth_igw` plays each of its N slots by `smooth_igw_draw`: a ~ μ
(uniform over the M candidates), kept with probability 1 / (1 + hγ (r̂(â) − r̂(a))), else â =
argmax r̂ (so rows may repeat).

What the rollout's log-probs mean. behaviour_logprobs are the per-token log-probs of the
distribution that drew each token (the processed sampling distribution, as `independent`);
policy_logprobs are the trained policy's on the plain prompt. Selection is not in either: the kept
set is *not* an i.i.d. sample of the policy. Its sequence distribution is
q(y) = π(y)·w(y), with w the (data-dependent) probability that y survives the selection, so the
usual estimator Σ_i A_i ∇log π(y_i) over the kept rows estimates E_q[A ∇log π], not the
policy gradient E_π[A ∇log π]; the per-token importance ratio π/μ = 1 on the kept tokens does
not correct for w, which has no closed form for the design (it depends on the other M − 1
candidates). The samplers are therefore biased rollout filters (like dynamic sampling or
rejection sampling), chosen for what they train on; SmoothIGW's play probability P(a) over the
candidates is known (`rollout_design.smooth_igw_probs`) but is not used as a weight here.
"""
from __future__ import annotations

import abc
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.bandits.rollout_design import SELECTORS, smooth_igw_draw
from explore_rl.distributed import to_host
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import RolloutBatch
from explore_rl.sampling.samplers import IndependentSampler, Policies, Sampler
from explore_rl.tasks.base import Problem, Task
from explore_rl.tasks.registry import score_batch

__all__ = ["CandidateSampler", "DesignSelectSampler", "SmoothIGWSampler", "features",
           "mean_logprob", "take_rows"]

ESTIMATES = ("logprob", "reward")
FEATURES = ("judge", "token_mean")


@jax.jit
def features(embedding: jax.Array, tokens: jax.Array, mask: jax.Array) -> jax.Array:
  """φ [R, D]: the L2-normalised mean token embedding of each response (module doc).

  embedding [V, D]; tokens int32 [R, M]; mask bool [R, M]. An empty response gets φ = 0.
  """
  e = jnp.take(embedding.astype(jnp.float32), tokens, axis=0)       # [R, M, D]
  w = mask.astype(jnp.float32)[..., None]
  mean = (e * w).sum(1) / jnp.maximum(w.sum(1), 1.0)                 # [R, D]
  return mean / jnp.maximum(jnp.linalg.norm(mean, axis=-1, keepdims=True), 1e-12)


@jax.jit
def mean_logprob(logprobs: jax.Array, mask: jax.Array) -> jax.Array:
  """r̂ [R] = Σ_t mask·log π / max(1, Σ_t mask): the mean token log-prob of each response."""
  m = mask.astype(jnp.float32)
  return (logprobs * m).sum(-1) / jnp.maximum(m.sum(-1), 1.0)


def take_rows(batch: RolloutBatch, rows) -> RolloutBatch:
  """The rollout of sample rows `rows` (int [B*N], prompt-major); the prompts are unchanged,
  and so are the FLOPs: the M candidates were all drawn, the dropped ones too."""
  rows = jnp.asarray(rows, jnp.int32)
  unchanged = {"prompt_tokens", "prompt_valid", "flops"}
  return RolloutBatch(*(x if name in unchanged else jnp.take(x, rows, axis=0)
                        for name, x in zip(RolloutBatch._fields, batch)))


class CandidateSampler(Sampler):
  """M candidates per prompt, their features and estimates; subclasses choose N of them.

  `__call__` splits `rng` into (k_candidates, k_select): the candidates are
  `IndependentSampler(...)(policies, problems, k_candidates, num_samples=M)` and the choice of
  prompt b uses the integer seed `seeds(k_select, B)[b]`.
  """
  takes_task = True

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, task: Task | None = None,
               embed: Callable[[list[str]], np.ndarray] | None = None, candidates: int = 8,
               estimate: str = "logprob", feature: str | None = None):
    super().__init__(sampling=sampling, prompt_len=prompt_len)
    if estimate not in ESTIMATES:
      raise ValueError(f"estimate={estimate!r}; valid: {', '.join(ESTIMATES)}")
    if feature is not None and feature not in FEATURES:
      raise ValueError(f"feature={feature!r}; valid: {', '.join(FEATURES)}")
    if feature == "judge" and embed is None:
      raise ValueError("feature='judge' needs an embedder (the trainer passes the embedding "
                       "judge's); use feature='token_mean' without one")
    if int(candidates) < 2:
      raise ValueError(f"candidates must be >= 2, got {candidates}")
    self.task, self.candidates, self.estimate = task, int(candidates), estimate
    self.feature, self.embed = feature, embed
    self.draw = IndependentSampler(sampling=sampling, prompt_len=prompt_len)
    self._stats = np.zeros(3)  # prompts, mean r̂ of the kept rows, mean r̂ of the candidates

  @staticmethod
  def seeds(rng: jax.Array, num_prompts: int) -> np.ndarray:
    """One integer seed per prompt for the host-side selection rule."""
    return np.asarray(jax.random.randint(rng, (num_prompts,), 0, 2**31 - 1))

  def describe(self, policies: Policies, problems: Sequence[Problem], cands: RolloutBatch):
    """(φ [B, M, D] or None without a `feature`, r̂ [B, M]) NumPy: the candidates' features
    and estimates."""
    b, m = len(problems), self.candidates
    texts = None
    if self.feature == "judge" or self.estimate == "reward":
      tokens, truncated = to_host((cands.tokens, cands.truncated))
      texts = [policies.trained.tokenizer.decode(t) for t in tokens]
    phi = None
    if self.feature == "judge":
      phi = self.embed(texts)                                             # [B*M, D]
    elif self.feature == "token_mean":
      phi = features(policies.trained.params["embed_tokens"]["embedding"], cands.tokens,
                     cands.mask)
    if self.estimate == "logprob":
      r = np.asarray(mean_logprob(cands.policy_logprobs, cands.mask)).reshape(b, m)
    else:
      if self.task is None:
        raise ValueError("estimate='reward' needs the run's task")
      results = score_batch([p for p in problems for _ in range(m)], texts, truncated.tolist(),
                            default_task=self.task)
      r = np.asarray([x.reward for x in results], np.float64).reshape(b, m)
    return (None if phi is None else np.asarray(phi, np.float64).reshape(b, m, -1)), r

  @abc.abstractmethod
  def choose(self, phi: np.ndarray, r: np.ndarray, n: int, seed: int) -> np.ndarray:
    """int [n]: the kept candidates of one prompt (φ [M, D], r̂ [M])."""

  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    k_cand, k_sel = jax.random.split(rng)
    cands = self.draw(policies, problems, k_cand, num_samples=self.candidates)
    phi, r = self.describe(policies, problems, cands)
    seeds = self.seeds(k_sel, len(problems))
    picks = np.stack([self.choose(None if phi is None else phi[b], r[b], num_samples,
                                  int(seeds[b]))
                      for b in range(len(problems))])                  # [B, N]
    self._stats += [len(problems), np.take_along_axis(r, picks, 1).mean(1).sum(),
                    r.mean(1).sum()]
    rows = (np.arange(len(problems))[:, None] * self.candidates + picks).reshape(-1)
    return take_rows(cands, rows)

  def metrics(self) -> dict:
    """`<name>_estimate_kept` / `_candidates`: the mean r̂ of the kept rows and of all
    candidates, averaged over the prompts since the last call."""
    n, kept, cand = self._stats
    self._stats = np.zeros(3)
    if n == 0:
      return {}
    return {f"{self.name}_estimate_kept": kept / n, f"{self.name}_estimate_candidates": cand / n}


class DesignSelectSampler(CandidateSampler):
  """`rollout.sampler="design_select"`: keep the N of M candidates the multiset design picks.

  sampler_kwargs: candidates M (8; must exceed rollout.num_samples N), selector ("design" |
  "random", the control), feature ("judge" | "token_mean"), estimate ("logprob" | "reward"),
  ridge λ (1.0), epsilon ε (0.05), include_best (False). With â* = argmax r̂ and
  Δ̂(i) = max(ε, r̂_{â*} − r̂_i), the kept set is
  A = argmin_{|A|=N} max_{i≠â*} ‖φ_i − φ_{â*}‖²_{(λI + Σ_{j∈A} φ_jφ_jᵀ)⁻¹} / Δ̂(i)² (greedy +
  swaps; `rollout_design.design_select`). See the module docstring for the bias.
  """
  name = "design_select"
  takes_embed = True

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, task: Task | None = None,
               embed=None, candidates: int = 8, selector: str = "design",
               estimate: str = "logprob", feature: str = "judge", ridge: float = 1.0,
               epsilon: float = 0.05, include_best: bool = False):
    super().__init__(sampling=sampling, prompt_len=prompt_len, task=task, embed=embed,
                     candidates=candidates, estimate=estimate, feature=feature)
    self.select = SELECTORS.get(selector)
    self.selector = selector
    self.options = {"ridge": float(ridge), "epsilon": float(epsilon),
                    "include_best": bool(include_best)} if selector == "design" else {}

  def choose(self, phi, r, n, seed):
    if n >= self.candidates:
      raise ValueError(f"design_select needs candidates > rollout.num_samples, got "
                       f"{self.candidates} <= {n}")
    return np.asarray(self.select(phi, n, estimates=r, seed=seed, **self.options), np.int64)


class SmoothIGWSampler(CandidateSampler):
  """`rollout.sampler="smooth_igw"`: each of the N slots plays a SmoothIGW draw over M candidates.

  sampler_kwargs: candidates M (8), gamma γ (10.0), h (1.0), estimate ("logprob" | "reward").
  Slot k of prompt b: a ~ uniform over the M candidates, kept with probability
  p(a) = 1 / (1 + hγ (r̂(â) − r̂(a))), else â = argmax r̂ (`rollout_design.smooth_igw_draw`,
  seeded per prompt). Rows may repeat a candidate. See the module docstring for the bias.
  """
  name = "smooth_igw"

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, task: Task | None = None,
               candidates: int = 8, gamma: float = 10.0, h: float = 1.0,
               estimate: str = "logprob"):
    super().__init__(sampling=sampling, prompt_len=prompt_len, task=task, candidates=candidates,
                     estimate=estimate)
    if gamma < 0 or h <= 0:
      raise ValueError(f"need gamma >= 0 and h > 0, got gamma={gamma}, h={h}")
    self.gamma, self.h = float(gamma), float(h)

  def choose(self, phi, r, n, seed):
    return smooth_igw_draw(r, gamma=self.gamma, h=self.h, seed=seed, num_draws=n)
