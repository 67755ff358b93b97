"""Rollout tools: design_select vs brute force and random, SmoothIGW against its formula."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from explore_rl.bandits.rollout_design import SELECTORS, design_select, random_select
from explore_rl.bandits.rollout_design import smooth_igw_draw, smooth_igw_probs


def _criterion(features, estimates, chosen, *, ridge=1.0, epsilon=0.05):
  """max_{i≠â*} ‖φ_i − φ_â*‖²_{(λI + V(A))⁻¹} / Δ̂(i)² by direct inversion."""
  best = int(np.argmax(estimates))
  others = np.arange(len(features)) != best
  phi = features[list(chosen)]
  inv = np.linalg.inv(ridge * np.eye(features.shape[1]) + phi.T @ phi)
  y = features[best] - features[others]
  gaps = np.maximum(epsilon, estimates[best] - estimates[others])
  return np.max(np.einsum("pi,ij,pj->p", y, inv, y) / gaps**2)


def test_design_select_matches_brute_force_over_subsets():
  rng = np.random.default_rng(0)
  for _ in range(40):
    features = rng.standard_normal((7, 3))
    estimates = rng.random(7)
    chosen = design_select(features, 3, estimates=estimates)
    assert len(set(chosen.tolist())) == 3
    optimum = min(_criterion(features, estimates, c) for c in itertools.combinations(range(7), 3))
    assert _criterion(features, estimates, chosen) <= 1.1 * optimum


def test_design_select_beats_random_and_spreads_over_directions():
  """Best answer e_0; competitors at equal gaps: four near-copies of e_1, and e_2, e_3, e_4.

  Every direction e_0 − e_j must be resolved, so the design spends at most one pick on the
  near-copies, where random picks often spend several.
  """
  rng = np.random.default_rng(1)
  base = np.eye(5)
  features = np.vstack([base[0], base[1] + 0.01 * rng.standard_normal((4, 5)), base[2:]])
  estimates = np.array([1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])  # [8]
  chosen = design_select(features, 4, estimates=estimates)
  assert np.sum((chosen >= 1) & (chosen <= 4)) <= 1
  value = _criterion(features, estimates, chosen)
  optimum = min(_criterion(features, estimates, c) for c in itertools.combinations(range(8), 4))
  assert value == pytest.approx(optimum)
  randoms = [_criterion(features, estimates, random_select(features, 4, seed=s))
             for s in range(50)]
  assert value <= min(randoms) + 1e-9 and value < np.median(randoms)


def test_design_select_projection_is_exact():
  """D > M: working in the span of the features gives the same choice as the full D-space."""
  rng = np.random.default_rng(2)
  features = rng.standard_normal((6, 40))
  estimates = rng.random(6)
  projected = design_select(features, 3, estimates=estimates)
  full = design_select(features, 3, estimates=estimates, gram=np.zeros((40, 40)))
  assert sorted(projected.tolist()) == sorted(full.tolist())


def test_design_select_options_and_errors():
  rng = np.random.default_rng(3)
  features, estimates = rng.standard_normal((6, 4)), rng.random(6)
  chosen = design_select(features, 3, estimates=estimates, include_best=True)
  assert chosen[0] == np.argmax(estimates) and len(set(chosen.tolist())) == 3
  with pytest.raises(ValueError, match="cannot select"):
    design_select(features, 7, estimates=estimates)
  with pytest.raises(ValueError, match="estimates"):
    design_select(features, 2, estimates=estimates[:3])
  assert sorted(SELECTORS.names()) == ["design", "random"]
  picks = random_select(features, 4, seed=5)
  assert len(set(picks.tolist())) == 4 and picks.tolist() == random_select(features, 4,
                                                                           seed=5).tolist()


def test_smooth_igw_probs_match_formula():
  estimates = np.array([0.2, 0.9, 0.5, 0.9, -1.0])
  base = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
  gamma, h = 3.0, 0.5
  accept, play = smooth_igw_probs(estimates, gamma=gamma, h=h, base_probs=base)
  want = 1.0 / (1.0 + h * gamma * (0.9 - estimates))
  np.testing.assert_allclose(accept, want)
  expected = base * want
  expected[1] += 1.0 - expected.sum()  # rejections go to â = first argmax (index 1)
  np.testing.assert_allclose(play, expected)
  assert play.sum() == pytest.approx(1.0) and accept[3] == 1.0
  # gamma = 0 plays μ; large gamma plays the maximisers almost surely
  np.testing.assert_allclose(smooth_igw_probs(estimates, gamma=0.0, h=1.0, base_probs=base)[1],
                             base)
  assert smooth_igw_probs(estimates, gamma=1e9, h=1.0)[1][[1, 3]].sum() > 0.99  # the tied best
  batch = np.stack([estimates, estimates[::-1]])
  _, play_batch = smooth_igw_probs(batch, gamma=gamma, h=h)  # uniform μ, [2, 5]
  np.testing.assert_allclose(play_batch.sum(-1), 1.0)
  np.testing.assert_allclose(play_batch[1], smooth_igw_probs(estimates[::-1], gamma=gamma, h=h)[1])
  with pytest.raises(ValueError):
    smooth_igw_probs(estimates, gamma=1.0, h=1.0, base_probs=np.ones(5))


def test_smooth_igw_draw_follows_play_distribution():
  estimates = np.array([0.2, 0.9, 0.5, 0.0])
  base = np.array([0.4, 0.1, 0.3, 0.2])
  _, play = smooth_igw_probs(estimates, gamma=2.0, h=1.0, base_probs=base)
  draws = smooth_igw_draw(estimates, gamma=2.0, h=1.0, base_probs=base, seed=0,
                          num_draws=100_000)
  assert draws.shape == (100_000,)
  np.testing.assert_allclose(np.bincount(draws, minlength=4) / 1e5, play, atol=0.005)
  np.testing.assert_array_equal(draws[:50], smooth_igw_draw(estimates, gamma=2.0, h=1.0,
                                                            base_probs=base, seed=0,
                                                            num_draws=100_000)[:50])
  assert smooth_igw_draw(np.zeros((3, 4)), gamma=1.0, h=1.0, num_draws=2).shape == (3, 2)
