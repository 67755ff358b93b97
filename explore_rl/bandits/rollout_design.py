"""Bandit tools for LLM rollouts: design-selected training responses and SmoothIGW sampling.

Pure NumPy functions on arrays, for one prompt (loop or vmap-free batching by the caller);
docs/algorithms.md (multiset design; SmoothIGW).

Design selection. Of M sampled responses with feature vectors φ_i (the final hidden state, or the
embedding judge's vector; rows of `features[M, D]`, typically L2-normalised) and per-response
reward estimates r̂_i (`estimates[M]`: verifier rewards, a judge, a value or reward model),
choose the n to train on as the multiset design of `explore_rl.bandits.design` over responses:

  â* = argmax_i r̂_i (first on ties),   Δ̂(i) = max(ε, r̂_{â*} − r̂_i),
  A = argmin_{A ⊂ [M], |A| = n} max_{i ≠ â*} ‖φ_i − φ_{â*}‖²_{(V_0 + V(A))⁻¹} / Δ̂(i)²,
  V_0 = λ I + G,  V(A) = Σ_{i∈A} φ_i φ_iᵀ,

with G an optional Gram matrix of information already collected (e.g. features trained on at
earlier steps) and λ the ridge. A is a set (responses are distinct), found by the greedy +
restarts + swap search with Sherman–Morrison updates. It spreads the n picks over the feature
directions that separate the apparent best response from its close competitors, weighted by
1/gap². `random_select` (n distinct uniformly at random) is the control.

SmoothIGW (Zhu & Mineiro 2022, arXiv 2207.05849; the "Steepish Descent" blog's sampler for LLMs).
With estimates r̂, base distribution μ over the M candidates, learning rate γ and smoothing h:
draw a ~ μ and accept it with probability p(a) = 1 / (1 + hγ (r̂(â) − r̂(a))), â = argmax r̂;
otherwise play â. The play distribution is P(a) = μ(a) p(a) for a ≠ â and
P(â) = μ(â) + Σ_{a≠â} μ(a)(1 − p(a)).
"""
from __future__ import annotations

import numpy as np

from explore_rl.bandits.design import greedy_design
from explore_rl.registry import Registry

SELECTORS: Registry = Registry("rollout selector")


@SELECTORS.register("design")
def design_select(features, n: int, *, estimates, ridge: float = 1.0, epsilon: float = 0.05,
                  gram=None, include_best: bool = False, seed: int = 0) -> np.ndarray:
  """Indices int[n] of the n responses to train on, chosen by the plug-in design (module doc).

  features [M, D]; estimates [M]; ridge λ > 0; epsilon ε > 0 floors the gaps (with 0/1 rewards,
  responses tied with â* get weight 1/ε², the others 1/gap²); gram G [D, D] or None;
  include_best forces â* into the set. `seed` is unused (the selection is deterministic); it keeps
  the signature of `random_select`. Without G and with D > M the features are first expressed in
  an orthonormal basis of their span, which leaves every norm above unchanged (λI acts as λI
  there and the complement never enters) and keeps the linear algebra [M, M].
  """
  del seed
  phi = np.asarray(features, dtype=np.float64)  # [M, D]
  r = np.asarray(estimates, dtype=np.float64)  # [M]
  m, dim = phi.shape
  if r.shape != (m,):
    raise ValueError(f"estimates must have shape ({m},), got {r.shape}")
  if not 1 <= n <= m:
    raise ValueError(f"cannot select {n} of {m} responses")
  if ridge <= 0 or epsilon <= 0:
    raise ValueError("ridge and epsilon must be positive")
  if gram is None:
    if dim > m:
      q, _ = np.linalg.qr(phi.T)  # [D, M]: orthonormal basis containing the span
      phi, dim = phi @ q, q.shape[1]
    prior = ridge * np.eye(dim)
  else:
    prior = ridge * np.eye(dim) + np.asarray(gram, dtype=np.float64)
  best = int(np.argmax(r))
  others = np.arange(m) != best
  directions = phi[best][None, :] - phi[others]  # [M-1, D]
  weights = 1.0 / np.maximum(epsilon, r[best] - r[others]) ** 2  # [M-1]
  prior_inv = np.linalg.inv(prior)
  if not include_best:
    return greedy_design(prior_inv, phi, n, directions, weights, replace=False)
  if n == 1:
    return np.array([best])
  u = prior_inv @ phi[best]
  prior_inv = prior_inv - np.outer(u, u) / (1.0 + phi[best] @ u)  # Sherman–Morrison
  exclude = ~others
  rest = greedy_design(prior_inv, phi, n - 1, directions, weights, replace=False, exclude=exclude)
  return np.concatenate([[best], rest])


@SELECTORS.register("random")
def random_select(features, n: int, *, seed: int = 0, estimates=None, **unused) -> np.ndarray:
  """n distinct indices of the M rows of `features` uniformly at random (the control).

  `estimates` and other keywords are accepted and ignored, so it is a drop-in for design_select.
  """
  del estimates, unused
  m = len(features)
  if not 1 <= n <= m:
    raise ValueError(f"cannot select {n} of {m} responses")
  return np.random.default_rng(seed).choice(m, size=n, replace=False)


def smooth_igw_probs(estimates, *, gamma: float, h: float, base_probs=None):
  """SmoothIGW acceptance probabilities and play distribution over the last axis.

  estimates [..., M]; base_probs μ [..., M] (default uniform). Returns (accept [..., M],
  play [..., M]) with accept(a) = 1 / (1 + hγ (r̂(â) − r̂(a))) and
  play = μ·accept + (1 − Σ μ·accept)·onehot(â), â = argmax r̂ (first on ties).
  """
  r = np.asarray(estimates, dtype=np.float64)
  if gamma < 0 or h <= 0:
    raise ValueError(f"need gamma >= 0 and h > 0, got gamma={gamma}, h={h}")
  mu = (np.full(r.shape, 1.0 / r.shape[-1]) if base_probs is None
        else np.broadcast_to(np.asarray(base_probs, dtype=np.float64), r.shape))
  if np.any(mu < 0) or not np.allclose(mu.sum(-1), 1.0):
    raise ValueError("base_probs must be a probability vector over the last axis")
  best = np.argmax(r, axis=-1)  # [...]
  gap = np.take_along_axis(r, best[..., None], axis=-1) - r  # [..., M], >= 0
  accept = 1.0 / (1.0 + h * gamma * gap)
  play = mu * accept
  onehot = np.arange(r.shape[-1]) == best[..., None]
  play = play + onehot * (1.0 - play.sum(-1, keepdims=True))
  return accept, play


def smooth_igw_draw(estimates, *, gamma: float, h: float, base_probs=None, seed: int = 0,
                    num_draws: int = 1) -> np.ndarray:
  """Seeded SmoothIGW draws: a ~ μ, kept with probability accept(a), else â. int[..., num_draws]."""
  r = np.asarray(estimates, dtype=np.float64)
  accept, _ = smooth_igw_probs(r, gamma=gamma, h=h, base_probs=base_probs)
  mu = (np.full(r.shape, 1.0 / r.shape[-1]) if base_probs is None
        else np.broadcast_to(np.asarray(base_probs, dtype=np.float64), r.shape))
  rng = np.random.default_rng(seed)
  batch = r.shape[:-1]
  cdf = np.cumsum(mu, axis=-1)  # [..., M]
  u = rng.random(batch + (num_draws,))
  proposal = np.minimum((cdf[..., None, :] <= u[..., :, None]).sum(-1), r.shape[-1] - 1)
  keep = rng.random(batch + (num_draws,)) < np.take_along_axis(accept, proposal, axis=-1)
  best = np.argmax(r, axis=-1)[..., None]
  return np.where(keep, proposal, best)
