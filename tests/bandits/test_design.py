"""Greedy multiset design vs brute force, and Sherman–Morrison vs direct inversion."""
from __future__ import annotations

import numpy as np
import pytest

from explore_rl.bandits.design import brute_force_design, design_objective, greedy_design
from explore_rl.bandits.design import pairwise_directions, plug_in_directions
from explore_rl.bandits.linalg import sherman_morrison_downdate, sherman_morrison_update
from explore_rl.bandits.linalg import updated_sq_norms


def _random_instance(rng, scale):
  k, d, n = rng.integers(3, 7), rng.integers(2, 4), rng.integers(2, 4)
  arms = rng.standard_normal((k, d))
  basis = rng.standard_normal((d + 2, d))
  gram = scale * basis.T @ basis / (d + 2) + 1e-3 * np.eye(d)
  return arms, rng.standard_normal(d), gram, int(n)


@pytest.mark.parametrize("replace", [True, False])
def test_greedy_design_matches_brute_force(replace):
  """Stated guarantee: restarts + swaps reach the exact optimum on these random instances.

  The plain single greedy chain (restarts=False, no swaps) is measurably worse on some of them,
  which shows the comparison can fail.
  """
  rng = np.random.default_rng(0)
  ratios, plain = [], []
  for trial in range(120):
    arms, theta, gram, n = _random_instance(rng, scale=[0.1, 1.0, 10.0][trial % 3])
    _, directions, weights = plug_in_directions(arms, theta, 1e-3)
    _, optimum = brute_force_design(gram, arms, n, directions, weights, replace=replace)
    inv = np.linalg.inv(gram)
    chosen = greedy_design(inv, arms, n, directions, weights, replace=replace)
    assert chosen.shape == (n,)
    if not replace:
      assert len(set(chosen.tolist())) == n
    ratios.append(design_objective(gram, arms, chosen, directions, weights) / optimum)
    single = greedy_design(inv, arms, n, directions, weights, replace=replace, restarts=False,
                           swap_passes=0)
    plain.append(design_objective(gram, arms, single, directions, weights) / optimum)
  ratios, plain = np.array(ratios), np.array(plain)
  assert ratios.min() >= 1 - 1e-9  # brute force is the optimum
  assert ratios.max() <= 1.1  # the stated approximation factor (docstring of design.py)
  assert np.mean(ratios <= 1 + 1e-9) >= 0.95
  assert plain.max() > 1.1  # the single greedy chain alone does not meet the factor


def test_xy_design_matches_brute_force():
  rng = np.random.default_rng(1)
  for _ in range(30):
    arms, _, gram, n = _random_instance(rng, scale=1.0)
    directions = pairwise_directions(arms, np.ones(len(arms), dtype=bool))
    weights = np.ones(len(directions))
    _, optimum = brute_force_design(gram, arms, n, directions, weights)
    chosen = greedy_design(np.linalg.inv(gram), arms, n, directions, weights)
    assert design_objective(gram, arms, chosen, directions, weights) <= 1.1 * optimum


def test_design_prefers_informative_arm_on_hard_instance():
  """e_1 vs cos ω e_1 + sin ω e_2 is resolved by pulling e_2 (Soare et al. 2014)."""
  omega = 0.1
  arms = np.array([[1.0, 0.0], [0.0, 1.0], [np.cos(omega), np.sin(omega)]])
  theta = np.array([2.0, 0.0])
  _, directions, weights = plug_in_directions(arms, theta, 1e-3)
  chosen = greedy_design(np.eye(2) * 0.1, arms, 4, directions, weights)
  assert np.sum(chosen == 1) >= 3


def test_greedy_design_respects_exclude():
  arms = np.eye(3)
  _, directions, weights = plug_in_directions(arms, np.array([1.0, 0.5, 0.2]), 1e-3)
  chosen = greedy_design(np.eye(3), arms, 2, directions, weights, replace=False,
                         exclude=np.array([False, True, False]))
  assert 1 not in chosen.tolist()
  with pytest.raises(ValueError, match="cannot choose"):
    greedy_design(np.eye(3), arms, 3, directions, weights, replace=False,
                  exclude=np.array([False, True, False]))


def test_sherman_morrison_matches_direct_inversion():
  rng = np.random.default_rng(2)
  for d in (1, 2, 5, 8):
    basis = rng.standard_normal((d + 3, d))
    gram = basis.T @ basis + 0.1 * np.eye(d)
    inv = np.linalg.inv(gram)
    a = rng.standard_normal(d)
    np.testing.assert_allclose(sherman_morrison_update(inv, a),
                               np.linalg.inv(gram + np.outer(a, a)), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sherman_morrison_downdate(np.linalg.inv(gram + np.outer(a, a)), a),
                               inv, rtol=1e-7, atol=1e-10)
    directions, candidates = rng.standard_normal((6, d)), rng.standard_normal((4, d))
    got = updated_sq_norms(directions, candidates, inv)  # [6, 4]
    want = np.array([[y @ np.linalg.inv(gram + np.outer(c, c)) @ y for c in candidates]
                     for y in directions])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_plug_in_design_is_over_the_surviving_arms():
  """â* is the empirical best of the arms not eliminated. Arm 0 was eliminated earlier but θ̂
  now ranks it first: it must be neither â* nor a direction, so with orthogonal arms (a pull of
  arm 0 tells nothing about arms 1, 2) the design never plays it."""
  from explore_rl.bandits.strategies import STRATEGIES, State
  arms, theta = np.eye(3), np.array([1.0, 0.9, 0.0])
  active = np.array([False, True, True])
  gram = np.eye(3)
  state = State(arms, gram, np.linalg.inv(gram), theta, 1.0, np.ones(3, int), 3, 1, active)
  design = STRATEGIES.get("design")(arms, set_size=2, rng=np.random.default_rng(0), noise=1.0,
                                    delta=0.05)
  assert sorted(design.select(state).tolist()) == [1, 2]
  best, directions, weights = plug_in_directions(arms, theta, 1e-3, active)
  assert best == 1
  np.testing.assert_allclose(directions, [[0.0, 1.0, -1.0]])
  np.testing.assert_allclose(weights, [1 / 0.9**2])
