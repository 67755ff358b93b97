"""Run a strategy against the simulator until the stopping rule fires: `identify`.

Round structure (docs/algorithms.md, multiset design):

1. burn-in: ⌈d/n⌉ rounds cycling through d linearly independent arms (deterministic, Gram V_0),
   so that V_t is invertible;
2. each round: θ̂_t = V_t⁻¹ Σ x r, radius C_t, and the surviving set S_t loses every arm a
   with θ̂_tᵀ(b − a) > C_t‖b − a‖_{V_t⁻¹} for some b ∈ S_{t−1} (`explore_rl.bandits.confidence`);
   stop when one arm survives and return it (the best with probability ≥ 1 − δ); otherwise the
   strategy picks n arms, each pull returns a reward and V_t += Σ x xᵀ.

`num_samples` counts arm pulls, burn-in included (n per round). Past `max_rounds` rounds the run
ends unstopped and reports the empirical best surviving arm.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from explore_rl.bandits.confidence import confidence_radius, surviving_arms
from explore_rl.bandits.simulator import LinearSemiBandit, spanning_subset
from explore_rl.bandits.strategies import STRATEGIES, State


@dataclasses.dataclass
class Result:
  best: int  # index of the returned arm
  num_samples: int  # arm pulls, burn-in included
  num_rounds: int
  stopped: bool  # False when max_rounds ran out first
  counts: np.ndarray  # int[K]: pulls per arm


def run_identification(strategy: str, arms, theta, *, set_size: int, delta: float = 0.05,
                       noise: float = 1.0, seed: int = 0, max_rounds: int = 100_000,
                       reward: str = "gaussian", radius_scale: float = 1.0,
                       strategy_options: dict | None = None) -> Result:
  """`identify` with the full `Result`, Bernoulli rewards and strategy options.

  radius_scale multiplies C_t; values below 1 void the 1 − δ guarantee (used by the tests to show
  the error-rate test can fail).
  """
  factory = STRATEGIES.get(strategy)
  if not 0.0 < delta < 1.0:
    raise ValueError(f"delta must lie in (0, 1), got {delta}")
  if set_size < 1:
    raise ValueError(f"set_size must be >= 1, got {set_size}")
  bandit_seed, strategy_seed = np.random.SeedSequence(seed).spawn(2)
  sim = LinearSemiBandit(arms, theta, noise=noise, reward=reward, seed=bandit_seed)
  arms = sim.arms  # [K, d]
  sigma = sim.noise_scale
  policy = factory(arms, set_size=set_size, rng=np.random.default_rng(strategy_seed),
                   noise=sigma, delta=delta, **(strategy_options or {}))
  k, d = arms.shape
  burn = np.resize(spanning_subset(arms), -(-d // set_size) * set_size)  # cyclic, whole rounds
  burn_gram = arms[burn].T @ arms[burn]  # V_0 [d, d]
  gram, moment = np.zeros((d, d)), np.zeros(d)
  counts = np.zeros(k, dtype=int)
  rounds = 0
  active = np.ones(k, dtype=bool)  # S_t

  def play(idx):
    nonlocal gram, moment, rounds
    x = arms[idx]  # [n, d]
    gram = gram + x.T @ x
    moment = moment + x.T @ sim.pull(idx)
    counts[:] += np.bincount(idx, minlength=k)
    rounds += 1

  for start in range(0, len(burn), set_size):
    play(burn[start:start + set_size])
  while True:
    gram_inv = np.linalg.inv(gram)
    theta_hat = gram_inv @ moment
    radius = radius_scale * confidence_radius(gram, burn_gram, delta=delta, noise=sigma)
    active = surviving_arms(arms, theta_hat, gram_inv, radius, active)
    means = np.where(active, arms @ theta_hat, -np.inf)
    best = int(np.argmax(means))  # the empirical best surviving arm
    stop = int(active.sum()) == 1
    if stop or rounds >= max_rounds:
      return Result(best, int(counts.sum()), rounds, stop, counts.copy())
    state = State(arms, gram, gram_inv, theta_hat, radius, counts.copy(), int(counts.sum()), best,
                  active.copy())
    idx = np.asarray(policy.select(state), dtype=int)
    if idx.shape != (set_size,):
      raise RuntimeError(f"strategy {strategy!r} returned {idx.shape}, expected ({set_size},)")
    play(idx)


def identify(strategy: str, arms, theta, *, set_size: int, delta: float = 0.05,
             noise: float = 1.0, seed: int = 0, max_rounds: int = 100_000) -> tuple[int, int]:
  """Best-arm identification with Gaussian rewards xᵀθ + noise·N(0, 1), `set_size` arms a round.

  strategy: one of `uniform`, `thompson`, `design`, `xy_adaptive`, `rage` (unknown names raise
  ValueError listing these); arms [K, d]; theta [d]. Stops when the anytime confidence set has
  eliminated all arms but one, at confidence 1 − δ (`explore_rl.bandits.confidence`).
  Returns (best_index, num_samples), num_samples = arm pulls.
  """
  result = run_identification(strategy, arms, theta, set_size=set_size, delta=delta,
                              noise=noise, seed=seed, max_rounds=max_rounds)
  return result.best, result.num_samples
