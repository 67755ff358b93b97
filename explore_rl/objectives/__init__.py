"""explore_rl.objectives: pure loss, advantage and set-objective functions on arrays.

Importing the package registers every component in `registries` (ADVANTAGES,
POLICY_LOSSES, SET_FUNCTIONS, REWARD_SHAPERS, AGGREGATIONS), so a config can
name any of them.
"""
from explore_rl.objectives import (advantages, aggregation, entropy_control,  # noqa: F401
                                   policy_loss, set_rl)
