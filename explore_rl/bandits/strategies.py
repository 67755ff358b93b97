"""Arm-selection strategies for linear best-arm identification; one interface, selected by name.

Every strategy is built as ``STRATEGIES.get(name)(arms, set_size=n, rng=rng, noise=σ, delta=δ)``
and answers ``select(state) -> int[n]``, the multiset of arms to pull this round, from the shared
`State` (Gram matrix V_t, its inverse, θ̂_t, the confidence radius C_t and the surviving set S_t
of `explore_rl.bandits.confidence`). The stopping rule is common to all strategies (see
`explore_rl.bandits.identify`), so their sample counts are comparable. Formulas:
docs/algorithms.md (multiset design).

* ``uniform``: round-robin over the K arms (n consecutive arms of the cycle per round).
* ``thompson``: independent Thompson sampling, n draws θ̃_j = θ̂ + C_t L z_j (L Lᵀ = V_t⁻¹,
  z_j ~ N(0, I)), each playing argmax_a aᵀθ̃_j: the linear TS posterior inflated to the
  confidence radius (Agrawal & Goyal 2013, arXiv 1209.3352); `inflate=False` gives v = σ.
* ``design``: the plug-in multiset design over the surviving arms S_t, â* = the empirical best
  of S_t (`State.best`):
  A_t = argmin_{|A|=n} max_{a∈S_t, a≠â*} ‖a − â*‖²_{(V_t+V(A))⁻¹} / Δ̂(a)²,
  Δ̂(a) = max(ε, θ̂ᵀ(â* − a)), greedy with Sherman–Morrison updates and a swap pass
  (`explore_rl.bandits.design`).
* ``xy_adaptive``: XY-adaptive allocation (Soare, Lazaric, Munos 2014, arXiv 1409.6110): the greedy
  design for max_{y ∈ Y(S_t)} ‖y‖²_{(V_t+V(A))⁻¹} over differences of the surviving arms S_t,
  without gap weights. Unlike the paper's phases, samples
  are never discarded: all data feed the one anytime confidence set.
* ``rage``: RAGE-style phase elimination (Fiez et al. 2019, arXiv 1906.08399). Phase ℓ = 0, 1, ...
  fixes the active set S_ℓ, the Frank–Wolfe allocation λ_ℓ with value ρ_ℓ over Y(S_ℓ), and plays
  N_ℓ = ⌈C_t² ρ_ℓ 4^ℓ⌉ pulls (rounded up to whole rounds) in a shuffled order, enough for the
  confidence width C_t‖y‖_{V⁻¹} ≤ 2^{−ℓ} on Y(S_ℓ); S_ℓ shrinks by the common elimination. It
  differs from the paper in reusing earlier phases' samples and the anytime confidence set.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from explore_rl.bandits.allocation import round_allocation, xy_allocation
from explore_rl.bandits.design import greedy_design, pairwise_directions, plug_in_directions
from explore_rl.registry import Registry

STRATEGIES: Registry = Registry("bandit strategy")


@dataclasses.dataclass
class State:
  """What a strategy sees at the start of a round."""
  arms: np.ndarray  # [K, d]
  gram: np.ndarray  # [d, d]: V_t = Σ x xᵀ over all pulls so far
  gram_inv: np.ndarray  # [d, d]
  theta_hat: np.ndarray  # [d]: V_t⁻¹ Σ x r
  radius: float  # C_t
  counts: np.ndarray  # int[K]: pulls per arm so far
  num_samples: int
  best: int  # â*: the empirical best surviving arm
  active: np.ndarray  # bool[K]: S_t, the arms not eliminated by the confidence set


class Strategy:
  """Base class: keeps the arms, the set size n, a seeded generator, σ and δ."""

  def __init__(self, arms: np.ndarray, *, set_size: int, rng: np.random.Generator,
               noise: float, delta: float):
    self.arms, self.n, self.rng, self.noise, self.delta = arms, set_size, rng, noise, delta

  def select(self, state: State) -> np.ndarray:
    raise NotImplementedError


@STRATEGIES.register("uniform")
class Uniform(Strategy):
  """Round-robin: round t plays arms (t·n + j) mod K, j < n."""

  def __init__(self, arms, **kwargs):
    super().__init__(arms, **kwargs)
    self.next = 0

  def select(self, state: State) -> np.ndarray:
    idx = (self.next + np.arange(self.n)) % len(self.arms)
    self.next = (self.next + self.n) % len(self.arms)
    return idx


@STRATEGIES.register("thompson")
class Thompson(Strategy):
  """n independent draws θ̃ ~ N(θ̂, v² V⁻¹), each playing argmax_a aᵀθ̃.

  inflate=True (default) uses v = C_t, the confidence radius of the stopping rule, as linear
  Thompson sampling inflates its posterior (Agrawal & Goyal 2013, arXiv 1209.3352:
  v ∝ σ√(d log(1/δ))): a suboptimal a is then drawn with probability ≈ Φ(−Δ̂(a)/(C_t‖â* − a‖_{V⁻¹})),
  about Φ(−1) at the stopping boundary. inflate=False uses the plain posterior, v = σ; it pulls
  the arms needed to certify the best one ever more rarely and in practice does not stop.
  """

  def __init__(self, arms, *, inflate: bool = True, **kwargs):
    super().__init__(arms, **kwargs)
    self.inflate = inflate

  def select(self, state: State) -> np.ndarray:
    chol = np.linalg.cholesky(state.gram_inv)  # [d, d]
    z = self.rng.standard_normal((self.n, len(state.theta_hat)))  # [n, d]
    scale = state.radius if self.inflate else self.noise
    draws = state.theta_hat[None, :] + scale * z @ chol.T  # [n, d]
    return np.argmax(draws @ self.arms.T, axis=1)  # [n]


@STRATEGIES.register("design")
class PlugInDesign(Strategy):
  """Greedy plug-in multiset design; `epsilon` is the gap floor ε (a simple-regret tolerance)."""

  def __init__(self, arms, *, epsilon: float = 1e-3, **kwargs):
    super().__init__(arms, **kwargs)
    self.epsilon = epsilon

  def select(self, state: State) -> np.ndarray:
    _, directions, weights = plug_in_directions(self.arms, state.theta_hat, self.epsilon,
                                                state.active)
    return greedy_design(state.gram_inv, self.arms, self.n, directions, weights)


@STRATEGIES.register("xy_adaptive")
class XYAdaptive(Strategy):
  """Greedy XY design over the differences of the surviving arms, re-solved every round."""

  def select(self, state: State) -> np.ndarray:
    directions = pairwise_directions(self.arms, state.active)  # [P, d]
    return greedy_design(state.gram_inv, self.arms, self.n, directions,
                         np.ones(len(directions)))


@STRATEGIES.register("rage")
class Rage(Strategy):
  """Phase elimination with Frank–Wolfe XY allocations and 4^ℓ-growing phases."""

  def __init__(self, arms, *, fw_iters: int = 300, **kwargs):
    super().__init__(arms, **kwargs)
    self.fw_iters, self.phase, self.queue = fw_iters, 0, np.zeros(0, dtype=int)

  def _new_phase(self, state: State) -> None:
    lam, rho = xy_allocation(self.arms, pairwise_directions(self.arms, state.active),
                             iters=self.fw_iters)
    total = int(np.ceil(state.radius**2 * rho * 4.0**self.phase))
    total = max(self.n, -(-total // self.n) * self.n)  # whole rounds
    self.queue = self.rng.permutation(np.repeat(np.arange(len(self.arms)),
                                                round_allocation(lam, total)))
    self.phase += 1

  def select(self, state: State) -> np.ndarray:
    if len(self.queue) < self.n:
      self._new_phase(state)
    idx, self.queue = self.queue[:self.n], self.queue[self.n:]
    return idx
