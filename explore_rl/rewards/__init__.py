"""explore_rl.rewards: diversity judges (signature, embedding, LM judge).

Importing the package registers every judge in `JUDGES`; `embed(texts)` gives the
all-MiniLM-L6-v2 sentence embeddings DRA and EVOL rewards use.
"""
from explore_rl.rewards import embedding_judge, lm_judge, signature_judge  # noqa: F401
from explore_rl.rewards.judges import JUDGES, Judge, cluster_groups, get_judge
from explore_rl.rewards.minilm import embed

__all__ = ["JUDGES", "Judge", "cluster_groups", "embed", "get_judge"]
