"""explore_rl.rewards: diversity judges (signature, embedding, LM judge).

Every built-in judge is registered in `JUDGES` here (configs select one with
`config.judge`); `embed(texts)` gives the all-MiniLM-L6-v2 sentence embeddings that
DRA and EVOL rewards use.
"""
from explore_rl.rewards.embedding_judge import EmbeddingJudge
from explore_rl.rewards.judges import JUDGES, Judge, cluster_groups, get_judge
from explore_rl.rewards.lm_judge import LMJudge
from explore_rl.rewards.minilm import embed
from explore_rl.rewards.signature_judge import SignatureJudge

JUDGES.register("signature")(SignatureJudge)
JUDGES.register("embedding")(EmbeddingJudge)
JUDGES.register("lm_judge")(LMJudge)

__all__ = ["JUDGES", "EmbeddingJudge", "Judge", "LMJudge", "SignatureJudge", "cluster_groups",
           "embed", "get_judge"]
