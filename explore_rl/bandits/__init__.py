"""explore_rl.bandits: linear best-arm identification with designed multisets (docs/algorithms.md).

Public entry point: `identify(strategy, arms, theta, *, set_size, delta=0.05, noise=1.0, seed=0,
max_rounds=100_000) -> (best_index, num_samples)` with strategies `uniform`, `thompson`,
`design`, `xy_adaptive`, `rage`. Rollout helpers (design-selected responses, SmoothIGW) live in
`explore_rl.bandits.rollout_design`.
"""
from __future__ import annotations

from explore_rl.bandits.identify import Result, identify, run_identification
from explore_rl.bandits.simulator import LinearSemiBandit, soare_instance, sphere_instance
from explore_rl.bandits.strategies import STRATEGIES

__all__ = ["STRATEGIES", "LinearSemiBandit", "Result", "identify", "run_identification",
           "soare_instance", "sphere_instance"]
