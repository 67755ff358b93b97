"""explore_rl.objectives: pure loss, advantage and reward-shaping functions on arrays.

Importing the package fills the registries of every built-in component
(`catalog.py`), which configs select by name.
"""
from explore_rl.objectives.catalog import (ADVANTAGES, AGGREGATIONS, KL_ESTIMATORS,
                                              LOSS_TERMS, POLICY_LOSSES, REWARD_SHAPERS,
                                              SET_FUNCTIONS)

__all__ = ["ADVANTAGES", "AGGREGATIONS", "KL_ESTIMATORS", "LOSS_TERMS", "POLICY_LOSSES",
           "REWARD_SHAPERS", "SET_FUNCTIONS"]
