"""The sampler protocol: (policies, problems, rng) -> RolloutBatch, chosen by name.

`config.rollout.sampler` names one (default `independent`); `registry.py` lists
every built-in. A sampler is built once per run with the sampling settings and
called every step. It may draw tokens in any context (a dependent sampler puts
earlier samples in the prompt, an aggregated one mixes a teacher's logits in), but
it always returns the tokens with two sets of log-probs: those of the distribution
that drew them (behaviour) and those of the trained policy on the plain prompt
(policy), so every objective and its importance correction work unchanged, and the
FLOPs of every pass it ran (`RolloutBatch.flops`: its `generate` calls report theirs,
`policy_scores` its own; docs/algorithms.md, "FLOPs").
See docs/design.md, "Adding a sampler".
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from explore_rl.models import sharding
from explore_rl.models.flops import sequence_flops
from explore_rl.models.logprobs import score_responses
from explore_rl.models.policy import Policy
from explore_rl.models.tokenizer import encode_prompts
from explore_rl.sampling.generate import generate
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import RolloutBatch
from explore_rl.tasks.base import Problem


@dataclasses.dataclass(frozen=True)
class Policies:
  """The policies a sampler may use.

  trained:   the policy being trained (its log-probs are the rollout's policy_logprobs).
  behaviour: the policy that draws the tokens, when it is another one (two-policy
             training's explore policy); None: the trained policy draws.
  teacher:   a privileged or larger teacher, for samplers that aggregate with it.
  behaviour_instruction: text the behaviour policy reads before each prompt (an
             "explore" instruction; docs/algorithms.md, "Two policies"), "" for none.
  behaviour_temperature: the behaviour policy's sampling temperature; None: the run's.
  The instruction and temperature apply only with a behaviour policy; the trained
  policy's log-probs are always those of the plain prompt at the run's temperature.
  """
  trained: Policy
  behaviour: Policy | None = None
  teacher: Policy | None = None
  behaviour_instruction: str = ""
  behaviour_temperature: float | None = None

  @property
  def drawing(self) -> Policy:
    return self.trained if self.behaviour is None else self.behaviour


class Sampler(abc.ABC):
  """Built with the run's sampling settings; called once per step."""

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int):
    self.sampling = sampling
    self.prompt_len = prompt_len

  @abc.abstractmethod
  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    """N responses for each of the B problems."""

  def metrics(self) -> dict:
    """Scalars about the calls since the last `metrics()`, which the trainer logs with the
    step's metrics (e.g. the hindsight sampler's proposal counts); none by default."""
    return {}

  def encode(self, policies: Policies, problems: Sequence[Problem]):
    """The training prompts of `problems`: (int32 [B, P], bool [B, P]) on the device, the
    batch sharded over the drawing policy's mesh (`sharding.shard_batch`)."""
    tokens, valid = encode_prompts(policies.trained.tokenizer, [p.prompt for p in problems],
                                   self.prompt_len)
    return sharding.shard_batch(policies.drawing.params, tokens, valid)

  def drawing_prompts(self, policies: Policies, problems: Sequence[Problem]):
    """The prompts the drawing policy reads: the training prompts, behind the behaviour
    policy's instruction when it has one ([B, P + instruction tokens])."""
    instruction = policies.behaviour_instruction if policies.behaviour is not None else ""
    tokenizer = policies.trained.tokenizer
    if not instruction:
      return self.encode(policies, problems)
    length = self.prompt_len + len(tokenizer.encode(instruction))
    tokens, valid = encode_prompts(tokenizer, [instruction + p.prompt for p in problems], length)
    return sharding.shard_batch(policies.drawing.params, tokens, valid)

  def drawing_sampling(self, policies: Policies) -> SamplingConfig:
    """The drawing policy's sampling settings: the run's, at the behaviour temperature."""
    t = policies.behaviour_temperature
    if policies.behaviour is None or t is None:
      return self.sampling
    return dataclasses.replace(self.sampling, temperature=float(t))

  def policy_scores(self, policies: Policies, prompt_tokens, prompt_valid, tokens, mask):
    """(log-probs, entropy) [B*N, M] of the trained policy on the training prompt, and the
    FLOPs of that pass (one forward over [B*N, P + M])."""
    n = tokens.shape[0] // prompt_tokens.shape[0]
    rep = lambda x: jnp.repeat(x, n, axis=0)
    trained = policies.trained
    logprobs, entropy = score_responses(trained.graphdef, trained.params, rep(prompt_tokens),
                                        rep(prompt_valid), tokens, mask,
                                        temperature=self.sampling.temperature or 1.0)
    length = prompt_tokens.shape[1] + tokens.shape[1]
    return logprobs, entropy, sequence_flops(trained.config, tokens.shape[0], length)


class IndependentSampler(Sampler):
  """N i.i.d. samples per prompt from the drawing policy (one jitted `generate`).

  When the trained policy draws, the decode's own log-probs are the policy's (no
  extra pass); when another policy draws (explore/exploit), the trained policy
  scores the tokens in one teacher-forced forward pass.
  """

  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    drawing = policies.drawing
    tokenizer = policies.trained.tokenizer
    prompt_tokens, prompt_valid = self.encode(policies, problems)
    draw_tokens, draw_valid = (prompt_tokens, prompt_valid) if policies.behaviour is None \
        else self.drawing_prompts(policies, problems)
    out = generate(drawing.graphdef, drawing.params, draw_tokens, draw_valid, rng,
                   num_samples=num_samples, config=self.drawing_sampling(policies),
                   eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
    policy_lp, entropy, flops = out.logprobs, out.entropy, out.flops
    if policies.behaviour is not None:
      policy_lp, entropy, score_flops = self.policy_scores(policies, prompt_tokens, prompt_valid,
                                                           out.tokens, out.mask)
      flops = flops + score_flops
    return RolloutBatch(prompt_tokens, prompt_valid, out.tokens, out.mask, out.lengths,
                        out.truncated, out.sample_logprobs, policy_lp, entropy, flops)
