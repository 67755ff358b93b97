"""explore_rl.sampling: jitted decoding, logits processors, samplers chosen by name."""
from explore_rl.sampling.catalog import SAMPLERS, make_sampler
from explore_rl.sampling.samplers import Policies, Sampler

__all__ = ["SAMPLERS", "Policies", "Sampler", "make_sampler"]
