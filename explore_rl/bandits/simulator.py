"""Linear semi-bandit simulator: arms are vectors, a round plays a multiset of n arms.

Pulling arm x returns an independent reward per pull:

* ``gaussian``:  r = xᵀθ + σ·ξ, ξ ~ N(0, 1)  (σ-sub-Gaussian noise);
* ``bernoulli``: r ~ Bernoulli(clip(xᵀθ, 0, 1)) (mean xᵀθ when it lies in [0, 1]; the noise is
  ½-sub-Gaussian, so identification uses σ = ½).

Also the arm geometries of the experiments (docs/algorithms.md, multiset design):
`soare_instance` is the classic hard instance of Soare, Lazaric, Munos 2014 (arXiv 1409.6110)
and Fiez et al. 2019 (RAGE, arXiv 1906.08399): arms e_1..e_d and x_{d+1} = cos ω e_1 + sin ω e_2,
θ = 2e_1, where telling e_1 from x_{d+1} needs pulls of e_2, an arm that is far from optimal.
"""
from __future__ import annotations

import numpy as np

REWARDS = ("gaussian", "bernoulli")


class LinearSemiBandit:
  """Seeded simulator: `pull(indices int[n]) -> rewards float[n]`, one reward per pulled arm."""

  def __init__(self, arms, theta, *, noise: float = 1.0, reward: str = "gaussian",
               seed: int | np.random.Generator = 0):
    self.arms = np.asarray(arms, dtype=np.float64)  # [K, d]
    self.theta = np.asarray(theta, dtype=np.float64)  # [d]
    if self.arms.ndim != 2 or self.theta.shape != self.arms.shape[1:]:
      raise ValueError(f"arms must be [K, d] and theta [d]; got {self.arms.shape}, "
                       f"{self.theta.shape}")
    if reward not in REWARDS:
      raise ValueError(f"unknown reward {reward!r}; valid names: {', '.join(REWARDS)}")
    self.noise, self.reward = float(noise), reward
    self.rng = np.random.default_rng(seed)
    self.means = self.arms @ self.theta  # [K]
    self.num_pulls = 0

  @property
  def best(self) -> int:
    return int(np.argmax(self.means))

  @property
  def noise_scale(self) -> float:
    """Sub-Gaussian constant σ of the reward noise."""
    return self.noise if self.reward == "gaussian" else 0.5

  def pull(self, indices) -> np.ndarray:
    indices = np.asarray(indices, dtype=int)
    mean = self.means[indices]
    self.num_pulls += indices.size
    if self.reward == "gaussian":
      return mean + self.noise * self.rng.standard_normal(indices.shape)
    return (self.rng.random(indices.shape) < np.clip(mean, 0.0, 1.0)).astype(np.float64)


def spanning_subset(arms: np.ndarray, tol: float = 1e-9) -> np.ndarray:
  """Indices of d linearly independent arms, chosen greedily by residual norm (pivoted QR).

  Raises ValueError when the arms do not span R^d (the least-squares estimate would not exist).
  """
  arms = np.asarray(arms, dtype=np.float64)
  residual = arms.copy()
  chosen = []
  for _ in range(arms.shape[1]):
    norms = np.linalg.norm(residual, axis=1)
    i = int(np.argmax(norms))
    if norms[i] <= tol * max(1.0, np.abs(arms).max()):
      raise ValueError(f"arms span only a {len(chosen)}-dimensional space, need {arms.shape[1]}")
    chosen.append(i)
    q = residual[i] / norms[i]
    residual = residual - np.outer(residual @ q, q)
  return np.asarray(chosen, dtype=int)


def soare_instance(d: int, omega: float = 0.1):
  """Arms e_1..e_d, cos ω e_1 + sin ω e_2 ([d+1, d]) and θ = 2e_1; the best arm is e_1 (index 0).

  Gap of the near-optimal arm: Δ = 2(1 − cos ω) ≈ ω².
  """
  if d < 2:
    raise ValueError("the hard instance needs d >= 2")
  arms = np.vstack([np.eye(d), np.eye(d)[0] * np.cos(omega) + np.eye(d)[1] * np.sin(omega)])
  return arms, 2.0 * np.eye(d)[0]


def sphere_instance(d: int, num_arms: int = 20, *, tilt: float = 0.25, seed: int = 0):
  """`num_arms` arms uniform on the unit sphere in R^d; θ = 2(x_i + tilt·(x_j − x_i)).

  x_i, x_j are the two closest arms (the construction of Fiez et al. 2019, arXiv 1906.08399, with
  tilt 0.01 there; 0.25 here keeps the smallest gap, 0.5‖x_i − x_j‖² when x_i stays best, moderate).
  """
  rng = np.random.default_rng(seed)
  arms = rng.standard_normal((num_arms, d))
  arms /= np.linalg.norm(arms, axis=1, keepdims=True)
  dist = np.linalg.norm(arms[:, None] - arms[None], axis=-1) + np.eye(num_arms) * 1e9
  i, j = np.unravel_index(np.argmin(dist), dist.shape)
  return arms, 2.0 * (arms[i] + tilt * (arms[j] - arms[i]))
