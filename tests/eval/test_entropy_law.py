"""Entropy–performance law fit R = −a·exp(H) + b."""
import numpy as np
import pytest

from explore_rl.eval.entropy_law import EntropyLawFit, fit_entropy_law


def test_exact_points_golden():
  # x = exp(H) for H = 0, ln 2, ln 4 is 1, 2, 4; with a = 0.1, b = 0.6:
  # R = 0.6 − 0.1·x = 0.5, 0.4, 0.2. Ceiling −a + b = 0.5.
  fit = fit_entropy_law([0.0, np.log(2.0), np.log(4.0)], [0.5, 0.4, 0.2])
  assert fit.a == pytest.approx(0.1, abs=1e-12)
  assert fit.b == pytest.approx(0.6, abs=1e-12)
  assert fit.r2 == pytest.approx(1.0, abs=1e-12)
  assert fit.ceiling == pytest.approx(0.5, abs=1e-12)
  assert fit.num_points == 3
  np.testing.assert_allclose(fit.predict([0.0, np.log(3.0)]), [0.5, 0.3], atol=1e-12)
  assert np.ndim(fit.predict(0.0)) == 0


def test_least_squares_golden():
  # x = 1, 2, 3 (H = ln x), R = 1, 0, 2: x̄ = 2, R̄ = 1, Σdx·dr = (−1)(0) + 0 + (1)(1) = 1,
  # Σdx² = 2 -> slope 0.5, a = −0.5, b = R̄ + a·x̄ = 0. Fitted 0.5, 1, 1.5; residuals
  # 0.5, −1, 0.5 -> SS_res = 1.5, SS_tot = 0 + 1 + 1 = 2 -> R² = 0.25.
  fit = fit_entropy_law(np.log([1.0, 2.0, 3.0]), [1.0, 0.0, 2.0])
  assert (fit.a, fit.b, fit.r2) == pytest.approx((-0.5, 0.0, 0.25), abs=1e-12)


def test_matches_numpy_polyfit():
  rng = np.random.default_rng(0)
  h = rng.uniform(0.1, 1.5, size=12)
  r = rng.uniform(0.2, 0.6, size=12)
  slope, intercept = np.polyfit(np.exp(h), r, 1)
  fit = fit_entropy_law(h, r)
  assert fit.a == pytest.approx(-slope, rel=1e-9)
  assert fit.b == pytest.approx(intercept, rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_recovers_known_law_from_noisy_data(seed):
  # A collapse-like trajectory: entropy falls from 1.2 to 0.05 over 40 checkpoints.
  a, b, noise = 0.15, 0.62, 0.005
  rng = np.random.default_rng(seed)
  h = np.linspace(1.2, 0.05, 40)
  r = -a * np.exp(h) + b + rng.normal(0.0, noise, size=h.size)
  fit = fit_entropy_law(h, r)
  # Standard error of a is noise / sqrt(Σdx²) ≈ 0.005 / 1.7 ≈ 0.003: 0.012 is 4 s.e.
  assert fit.a == pytest.approx(a, abs=0.012)
  assert fit.b == pytest.approx(b, abs=0.025)
  assert fit.ceiling == pytest.approx(b - a, abs=0.015)
  assert fit.r2 > 0.95


@pytest.mark.parametrize("entropy,accuracy,match", [
    ([0.1, 0.2], [0.3, 0.4], "at least 3"),
    ([], [], "at least 3"),
    ([0.1, 0.2, 0.3], [0.3, 0.4], "equal length"),
    ([[0.1, 0.2, 0.3]], [[0.3, 0.4, 0.5]], "1-D"),
    ([0.1, np.nan, 0.3], [0.3, 0.4, 0.5], "finite"),
    ([0.1, 0.2, 0.3], [0.3, np.inf, 0.5], "finite"),
    ([0.5, 0.5, 0.5], [0.3, 0.4, 0.5], "all entropies are"),
    ([0.1, 0.2, 0.3], [0.4, 0.4, 0.4], "all accuracies are equal"),
    ([1.0, 2.0, 800.0], [0.3, 0.4, 0.5], "overflows"),
])
def test_clear_errors(entropy, accuracy, match):
  with pytest.raises(ValueError, match=match):
    fit_entropy_law(entropy, accuracy)


def test_result_is_a_frozen_dataclass():
  fit = EntropyLawFit(a=0.1, b=0.5, r2=0.9, num_points=4)
  assert fit.ceiling == pytest.approx(0.4)
  with pytest.raises(AttributeError):
    fit.a = 0.2
