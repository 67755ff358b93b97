"""Entropy–performance law R = −a·exp(H) + b (Cui et al., arXiv 2505.22617), least-squares fit.

H is the mean token entropy of the policy on training prompts and R the
validation accuracy, one (H, R) pair per checkpoint. The paper finds R trading
off against H along this curve as entropy collapses; its predicted ceiling is
the value at H = 0, R* = −a + b. The paper reports a and b only as plots, so
this is a tool for our own runs, not a reproduction of its numbers.

The model is linear in (a, b) once x = exp(H) is formed, R = b − a·x, so the
least-squares solution is closed form (ordinary regression of R on x):

    a = −Σ(x − x̄)(R − R̄) / Σ(x − x̄)²,   b = R̄ + a·x̄,   R² = 1 − SS_res / SS_tot.

A NumPy (float64) analysis tool: it validates its inputs and raises, so it is
not meant to be traced by JAX; `predict` accepts scalars or arrays.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["EntropyLawFit", "fit_entropy_law"]


@dataclasses.dataclass(frozen=True)
class EntropyLawFit:
  """R = −a·exp(H) + b fitted to `num_points` (H, R) pairs with coefficient of determination r2."""

  a: float
  b: float
  r2: float
  num_points: int

  @property
  def ceiling(self) -> float:
    """The predicted performance at zero entropy, −a + b."""
    return -self.a + self.b

  def predict(self, entropy):
    """−a·exp(H) + b for a scalar or array of entropies H."""
    return -self.a * np.exp(np.asarray(entropy, np.float64)) + self.b


def fit_entropy_law(entropy, accuracy) -> EntropyLawFit:
  """Least-squares fit of accuracy = −a·exp(entropy) + b.

  entropy, accuracy: 1-D sequences of equal length ≥ 3 (with 2 points the curve
  passes through both and R² says nothing). Raises ValueError for fewer points,
  mismatched or non-finite inputs, entropies that are all equal (a is then not
  identifiable) or accuracies that are all equal (R² is undefined).
  """
  h = np.asarray(entropy, np.float64)
  r = np.asarray(accuracy, np.float64)
  if h.ndim != 1 or r.shape != h.shape:
    raise ValueError(f"need two 1-D arrays of equal length, got shapes {h.shape} and {r.shape}")
  if h.size < 3:
    raise ValueError(f"need at least 3 (entropy, accuracy) points to fit a and b, got {h.size}")
  if not (np.all(np.isfinite(h)) and np.all(np.isfinite(r))):
    raise ValueError("entropy and accuracy must be finite")
  if h.max() >= np.log(np.finfo(np.float64).max):
    raise ValueError(f"exp(entropy) overflows: max entropy {h.max()}")
  x = np.exp(h)
  dx, dr = x - x.mean(), r - r.mean()
  sxx, syy = np.sum(dx * dx), np.sum(dr * dr)
  if sxx <= 1e-12 * np.sum(x * x):
    raise ValueError("all entropies are (numerically) equal: a is not identifiable")
  if np.ptp(r) == 0.0:  # (syy itself can be a rounding residue then)
    raise ValueError("all accuracies are equal: R² is undefined (the fit is a = 0, b = R)")
  a = -np.sum(dx * dr) / sxx
  b = r.mean() + a * x.mean()
  residual = r - (b - a * x)
  r2 = 1.0 - np.sum(residual * residual) / syy
  return EntropyLawFit(a=float(a), b=float(b), r2=float(r2), num_points=int(h.size))
