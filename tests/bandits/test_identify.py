"""identify(): the stopping rule's error rate, every strategy, names, counting, the simulator."""
from __future__ import annotations

import numpy as np
import pytest

from explore_rl.bandits import STRATEGIES, LinearSemiBandit, identify, run_identification
from explore_rl.bandits.confidence import confidence_radius, surviving_arms
from explore_rl.bandits.simulator import soare_instance, spanning_subset

NAMES = ["design", "rage", "thompson", "uniform", "xy_adaptive"]
# Easy instance: best arm e_1 (index 0), gaps 1 and 0.4.
ARMS = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
THETA = np.array([1.0, 0.0])


def _error_rate(strategy, radius_scale, sims=200):
  wrong = 0
  for seed in range(sims):
    result = run_identification(strategy, ARMS, THETA, set_size=2, delta=0.05, noise=0.5,
                                seed=seed, radius_scale=radius_scale, max_rounds=5_000)
    assert result.stopped
    wrong += result.best != 0
  return wrong / sims


@pytest.mark.parametrize("strategy", ["uniform", "design", "rage"])
def test_error_rate_at_most_delta(strategy):
  assert _error_rate(strategy, 1.0) <= 0.05


def test_error_rate_test_detects_a_too_small_radius():
  """With the radius shrunk tenfold the same check fails: the 1 − δ guarantee is not vacuous."""
  assert _error_rate("uniform", 0.1) > 0.05


@pytest.mark.parametrize("strategy", NAMES)
def test_every_strategy_finds_best_arm(strategy):
  for seed in range(3):
    best, num_samples = identify(strategy, ARMS, THETA, set_size=2, noise=0.5, seed=seed)
    assert best == 0
    assert num_samples % 2 == 0 and 2 <= num_samples < 10_000


@pytest.mark.parametrize("strategy", ["design", "xy_adaptive", "rage"])
def test_adaptive_strategies_beat_uniform_on_hard_instance(strategy):
  """Soare et al.'s instance in d = 6: uniform wastes pulls on e_3..e_6."""
  arms, theta = soare_instance(6, omega=0.3)
  uniform = [identify("uniform", arms, theta, set_size=4, seed=s)[1] for s in range(3)]
  adaptive = [identify(strategy, arms, theta, set_size=4, seed=s) for s in range(3)]
  assert all(best == 0 for best, _ in adaptive)
  assert np.median([n for _, n in adaptive]) < 0.5 * np.median(uniform)


def test_unknown_strategy_lists_valid_names():
  with pytest.raises(ValueError) as info:
    identify("epsilon_greedy", ARMS, THETA, set_size=2)
  for name in NAMES:
    assert name in str(info.value)
  assert STRATEGIES.names() == NAMES


def test_counts_seeding_and_max_rounds():
  first = identify("design", ARMS, THETA, set_size=3, noise=0.5, seed=7)
  assert first == identify("design", ARMS, THETA, set_size=3, noise=0.5, seed=7)
  result = run_identification("uniform", ARMS, THETA, set_size=3, noise=50.0, max_rounds=4)
  assert not result.stopped and result.num_rounds == 4
  assert result.num_samples == 12 == result.counts.sum()


def test_elimination_formula():
  gram_inv = np.eye(2) / 100.0  # ‖b − a‖_{V⁻¹} = ‖b − a‖ / 10
  theta_hat = np.array([1.0, 0.0])
  everyone = np.ones(3, dtype=bool)
  # means 1, 0, 0.6. e_1 beats arm 2 (gap 0.4, width C·√0.8/10) iff C < 4.47; arm 1 falls to
  # e_1 (gap 1, width C·√2/10) iff C < 7.07, or to arm 2 (gap 0.6, width C·√0.4/10) iff C < 9.49
  np.testing.assert_array_equal(surviving_arms(ARMS, theta_hat, gram_inv, 4.0, everyone),
                                [True, False, False])
  np.testing.assert_array_equal(surviving_arms(ARMS, theta_hat, gram_inv, 5.0, everyone),
                                [True, False, True])
  np.testing.assert_array_equal(surviving_arms(ARMS, theta_hat, gram_inv, 10.0, everyone),
                                everyone)
  # eliminated arms stay out, and only surviving arms eliminate
  np.testing.assert_array_equal(
      surviving_arms(ARMS, theta_hat, gram_inv, 4.0, np.array([False, True, True])),
      [False, False, True])
  gram0 = np.eye(2)
  want = np.sqrt(4 * 0.25 * (np.log(20.0) + 0.5 * np.log(101.0**2)))
  assert confidence_radius(100 * np.eye(2), gram0, delta=0.05, noise=0.5) == pytest.approx(want)


def test_simulator_rewards():
  sim = LinearSemiBandit(ARMS, THETA, noise=2.0, seed=0)
  rewards = sim.pull(np.zeros(20_000, dtype=int))
  assert abs(rewards.mean() - 1.0) < 0.1 and abs(rewards.std() - 2.0) < 0.1
  arms = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  sim = LinearSemiBandit(arms, np.array([0.7, 0.2]), reward="bernoulli", seed=0)
  rewards = sim.pull(np.repeat(np.arange(3), 20_000))
  assert set(np.unique(rewards)) <= {0.0, 1.0}
  np.testing.assert_allclose(rewards.reshape(3, -1).mean(1), [0.7, 0.2, 0.9], atol=0.02)
  assert sim.noise_scale == 0.5
  result = run_identification("design", arms, np.array([0.7, 0.2]), set_size=2,
                              reward="bernoulli", seed=0)
  assert result.stopped and result.best == 2
  with pytest.raises(ValueError, match="valid names"):
    LinearSemiBandit(ARMS, THETA, reward="poisson")


def test_arms_must_span():
  with pytest.raises(ValueError, match="span"):
    spanning_subset(np.array([[1.0, 1.0], [2.0, 2.0]]))
  assert sorted(spanning_subset(np.eye(3)[[0, 0, 1, 2]]).tolist()) in ([0, 2, 3], [1, 2, 3])
