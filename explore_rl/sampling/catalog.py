"""SAMPLERS: every built-in sampler by name (`config.rollout.sampler`)."""
from __future__ import annotations

from explore_rl.registry import Registry
from explore_rl.sampling.aggregated import AggregatedSampler
from explore_rl.sampling.dependent import SequentialSampler, SketchSampler
from explore_rl.sampling.design_select import DesignSelectSampler, SmoothIGWSampler
from explore_rl.sampling.hindsight import HindsightSampler
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import IndependentSampler, Sampler

SAMPLERS: Registry[type[Sampler]] = Registry("sampler")
SAMPLERS.register("independent")(IndependentSampler)
SAMPLERS.register("sequential")(SequentialSampler)
SAMPLERS.register("sketch")(SketchSampler)
SAMPLERS.register("aggregated")(AggregatedSampler)
SAMPLERS.register("hindsight")(HindsightSampler)
SAMPLERS.register("design_select")(DesignSelectSampler)
SAMPLERS.register("smooth_igw")(SmoothIGWSampler)


def make_sampler(name: str, *, sampling: SamplingConfig, prompt_len: int, task=None,
                 embed=None, **kwargs) -> Sampler:
  """The sampler registered as `name`, built with the run's settings and its own kwargs.

  Samplers that declare `takes_task = True` (e.g. `aggregated`, which needs each problem's
  privileged prompt) also receive the run's `task`; those that declare `takes_embed = True`
  (`design_select`, describing responses by text embeddings) receive `embed`, a function
  from texts to unit vectors [N, D] (the trainer passes the embedding judge's).
  """
  cls = SAMPLERS.get(name)
  if getattr(cls, "takes_task", False):
    kwargs["task"] = task
  if getattr(cls, "takes_embed", False):
    kwargs["embed"] = embed
  return SAMPLERS.build(name, sampling=sampling, prompt_len=prompt_len, **kwargs)
