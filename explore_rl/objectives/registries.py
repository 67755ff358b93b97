"""Registries of the objective pieces configs select by name.

- ADVANTAGES:    rewards[..., N] (+ context such as cluster ids) -> advantages[..., N]
- POLICY_LOSSES: per-token policy losses -> (per_token_loss[B, T], metrics)
- SET_FUNCTIONS: set objectives f(G) evaluated on every subset at once -> scores[..., K]
- REWARD_SHAPERS: reward adjustments that use extra context (embeddings, votes)
- AGGREGATIONS:  per-token loss -> (numerator, denominator)
"""
from explore_rl.registry import Registry

ADVANTAGES = Registry("advantage")
POLICY_LOSSES = Registry("policy loss")
SET_FUNCTIONS = Registry("set function")
REWARD_SHAPERS = Registry("reward shaper")
AGGREGATIONS = Registry("loss aggregation")
