"""explore_rl.rewards: diversity judges (signature, embedding, LM judge).

Importing the package registers every judge in `JUDGES`.
"""
from explore_rl.rewards import embedding_judge, lm_judge, signature_judge  # noqa: F401
from explore_rl.rewards.judges import JUDGES, Judge, cluster_groups, get_judge

__all__ = ["JUDGES", "Judge", "cluster_groups", "get_judge"]
