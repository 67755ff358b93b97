"""SAMPLERS: every built-in sampler by name (`config.rollout.sampler`)."""
from __future__ import annotations

from explore_rl.errors import ConfigError
from explore_rl.registry import Registry
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import IndependentSampler, Sampler

SAMPLERS: Registry[type[Sampler]] = Registry("sampler")
SAMPLERS.register("independent")(IndependentSampler)


def make_sampler(name: str, *, sampling: SamplingConfig, prompt_len: int, **kwargs) -> Sampler:
  """The sampler registered as `name`, built with the run's settings and its own kwargs."""
  try:
    cls = SAMPLERS.get(name)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  try:
    return cls(sampling=sampling, prompt_len=prompt_len, **kwargs)
  except TypeError as e:
    raise ConfigError(f"sampler {name!r}: {e}") from None
