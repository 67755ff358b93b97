"""Dependent samplers: sample k of a prompt is drawn knowing the prompt's samples 1..k−1.

docs/algorithms.md, "Two policies, dependent sampling". Independent samples of one
prompt may collide (the same strategy again); a dependent sampler shows sample k the
earlier samples of *its own* prompt, behind an instruction to take a different
approach, so the group is a designed multiset rather than N i.i.d. draws.

`sequential` (registered name): the N samples of a prompt are drawn one after the
other. The context of sample k (0-based) is one fixed-size token buffer

    [BOS | instruction | y_0 | sep | y_1 | sep | ... | y_{N-2} | sep | suffix | prompt]
      1       H          M     S     M     S          M      S     T     P   (slots)

where segment j (y_j, its separator) is valid only for j < k, the instruction and
suffix only for k > 0 (sample 0 is drawn from the plain prompt) and y_j excludes its
EOS. Holes are masked keys, and RoPE positions count valid tokens only
(`models.transformer.positions_from_mask`), so the model reads exactly
"<bos>instruction y_0 sep ... y_{k-1} sep suffix prompt". One `lax.scan` over k
carries the history buffer [B, N−1, M]; each step prefills the context once and
decodes with `generate` (a `lax.while_loop` over a KV cache): static shapes, one
compiled program, no Python loop of generate calls. Rows are prompts, so a context
holds its own prompt's samples and nothing of any other prompt.

`sketch` (SESA, arXiv 2510.15502): the same scan draws N short sketches (the first
`sketch_len` tokens of a response) sequentially, then every sketch is expanded into
a full response in parallel, starting from it: the expansion is the continuation of
[prompt | sketch] (the drawing policy's own, plain context), and the response is
sketch + expansion. A sketch that already ended (EOS) is the whole response.

Log-probs (docs/design.md, "The rollout"): behaviour_logprobs are those of the
distribution that drew each token — the history context for sequential samples and
sketches, [prompt | sketch] for expansions; policy_logprobs are the trained policy's
on the plain prompt at the run's temperature (`Sampler.policy_scores`, one forward
pass), i.e. of the policy that is deployed. `objective.is_correction` weights the
loss by the ratio π(y_t|x, y_<t) / μ(y_t|ctx) per token or per sequence
(objectives/importance.py; docs/algorithms.md, "Importance corrections").

FLOPs (`RolloutBatch.flops`): each of the N `generate` calls, its prefill of the whole
history context included, the expansions' `generate`, and the policy's scoring pass.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.errors import ConfigError
from explore_rl.sampling.generate import generate
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import RolloutBatch
from explore_rl.sampling.samplers import Policies, Sampler
from explore_rl.tasks.base import Problem

__all__ = ["DependentRollout", "SequentialSampler", "SketchSampler", "history_context",
           "sequential_generate", "sketch_generate"]

DEFAULT_INSTRUCTION = "tried "
DEFAULT_SEPARATOR = "; "
DEFAULT_SUFFIX = "now another way. "


class DependentRollout(NamedTuple):
  """N dependent samples per prompt, rows prompt-major (row b*N + k is sample k of prompt b)."""
  tokens: jax.Array           # int32 [B*N, M], pad after EOS
  mask: jax.Array             # bool  [B*N, M]
  sample_logprobs: jax.Array  # fp32  [B*N, M], log-prob under the context that drew it
  lengths: jax.Array          # int32 [B*N]
  truncated: jax.Array        # bool  [B*N]
  context_tokens: jax.Array   # int32 [B*N, L], the context sample k (or its sketch) was drawn in
  context_valid: jax.Array    # bool  [B*N, L]
  flops: jax.Array            # fp32  [], FLOPs of every `generate` call


def history_context(prompt_tokens: jax.Array, prompt_valid: jax.Array, history: jax.Array,
                    history_valid: jax.Array, k: jax.Array, instruction: jax.Array,
                    separator: jax.Array, suffix: jax.Array, *, bos_id: int | None):
  """The context of sample k of every prompt: (tokens int32 [B, L], valid bool [B, L]).

  prompt_tokens/valid [B, P] left-padded (BOS first when `bos_id` is not None);
  history/history_valid [B, J, M]: slot j holds sample j of the same row's prompt;
  instruction [H], separator [S], suffix [T] int32. L = 1 + H + J·(M + S) + T + P.
  Segments j >= k, and the instruction and suffix when k = 0, are masked.
  """
  b, p = prompt_tokens.shape
  _, j, m = history.shape
  seen = k > 0
  first = jnp.cumsum(prompt_valid.astype(jnp.int32), axis=1) == 1
  has_bos = bos_id is not None
  bos_tok = jnp.full((b, 1), bos_id if has_bos else 0, jnp.int32)
  bos_ok = jnp.full((b, 1), has_bos)
  body_ok = prompt_valid & ~(first & has_bos)
  const = lambda x: jnp.broadcast_to(x.astype(jnp.int32), (b, x.shape[0]))
  const_ok = lambda x: jnp.broadcast_to(seen, (b, x.shape[0]))
  older = (jnp.arange(j) < k)[None, :, None]                                     # [1, J, 1]
  hist_tok = jnp.concatenate([history, jnp.broadcast_to(separator, (b, j, separator.shape[0]))],
                             axis=2).reshape(b, -1)
  hist_ok = jnp.concatenate([history_valid & older,
                             jnp.broadcast_to(older, (b, j, separator.shape[0]))],
                            axis=2).reshape(b, -1)
  tokens = jnp.concatenate([bos_tok, const(instruction), hist_tok, const(suffix),
                            prompt_tokens], axis=1)
  valid = jnp.concatenate([bos_ok, const_ok(instruction), hist_ok, const_ok(suffix), body_ok],
                          axis=1)
  return tokens, valid


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "config", "eos_id",
                                             "pad_id", "bos_id"))
def sequential_generate(graphdef, params, prompt_tokens: jax.Array, prompt_valid: jax.Array,
                        instruction: jax.Array, separator: jax.Array, suffix: jax.Array,
                        rng: jax.Array, *, num_samples: int, config: SamplingConfig,
                        eos_id: int, pad_id: int, bos_id: int | None) -> DependentRollout:
  """N samples per prompt, sample k drawn in `history_context` of samples < k (one scan)."""
  b = prompt_tokens.shape[0]
  m = config.max_new_tokens
  slots = max(num_samples - 1, 1)                 # the last sample is never anyone's history

  def step(carry, k):
    history, history_valid = carry
    ctx, ctx_valid = history_context(prompt_tokens, prompt_valid, history, history_valid, k,
                                     instruction, separator, suffix, bos_id=bos_id)
    out = generate(graphdef, params, ctx, ctx_valid, jax.random.fold_in(rng, k), num_samples=1,
                   config=config, eos_id=eos_id, pad_id=pad_id)
    slot = jnp.minimum(k, slots - 1)              # the last step's write is never read
    history = jax.lax.dynamic_update_index_in_dim(history, out.tokens, slot, axis=1)
    history_valid = jax.lax.dynamic_update_index_in_dim(
        history_valid, out.mask & (out.tokens != eos_id), slot, axis=1)
    return (history, history_valid), ((out.tokens, out.mask, out.sample_logprobs,
                                       out.truncated, ctx, ctx_valid), out.flops)

  init = (jnp.full((b, slots, m), pad_id, jnp.int32), jnp.zeros((b, slots, m), bool))
  _, (outs, flops) = jax.lax.scan(step, init, jnp.arange(num_samples))   # flops [N]
  # [N, B, ...] -> prompt-major rows [B*N, ...]
  tokens, mask, slp, truncated, ctx, ctx_valid = (
      jnp.swapaxes(x, 0, 1).reshape(b * num_samples, *x.shape[2:]) for x in outs)
  return DependentRollout(tokens, mask, slp, mask.sum(1).astype(jnp.int32), truncated, ctx,
                          ctx_valid, flops.sum())


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "config", "eos_id",
                                             "pad_id", "bos_id", "sketch_len"))
def sketch_generate(graphdef, params, prompt_tokens: jax.Array, prompt_valid: jax.Array,
                    instruction: jax.Array, separator: jax.Array, suffix: jax.Array,
                    rng: jax.Array, *, num_samples: int, config: SamplingConfig, eos_id: int,
                    pad_id: int, bos_id: int | None, sketch_len: int) -> DependentRollout:
  """SESA: N sketches of `sketch_len` tokens drawn sequentially, then expanded in parallel.

  Response row = sketch (S slots) + expansion (M − S slots); the expansion continues
  [prompt | sketch] and is masked out where the sketch already emitted EOS. The
  context fields are the sketches' (where their dependence lives).
  """
  m, s = config.max_new_tokens, sketch_len
  rng_sketch, rng_expand = jax.random.split(rng)
  sk = sequential_generate(graphdef, params, prompt_tokens, prompt_valid, instruction,
                           separator, suffix, rng_sketch, num_samples=num_samples,
                           config=dataclasses.replace(config, max_new_tokens=s), eos_id=eos_id,
                           pad_id=pad_id, bos_id=bos_id)
  open_ = sk.truncated                                         # no EOS yet: expand it
  rep = lambda x: jnp.repeat(x, num_samples, axis=0)
  ctx = jnp.concatenate([rep(prompt_tokens), sk.tokens], axis=1)             # [B*N, P + S]
  ctx_valid = jnp.concatenate([rep(prompt_valid), sk.mask & open_[:, None]], axis=1)
  ex = generate(graphdef, params, ctx, ctx_valid, rng_expand, num_samples=1,
                config=dataclasses.replace(config, max_new_tokens=m - s), eos_id=eos_id,
                pad_id=pad_id)
  live = open_[:, None]
  tokens = jnp.concatenate([sk.tokens, jnp.where(live, ex.tokens, pad_id)], axis=1)
  mask = jnp.concatenate([sk.mask, ex.mask & live], axis=1)
  slp = jnp.concatenate([sk.sample_logprobs, jnp.where(live, ex.sample_logprobs, 0.0)], axis=1)
  return DependentRollout(tokens, mask, slp, mask.sum(1).astype(jnp.int32),
                          open_ & ex.truncated, sk.context_tokens, sk.context_valid,
                          sk.flops + ex.flops)


class SequentialSampler(Sampler):
  """`sequential`: sample k of a prompt conditioned on its samples < k (module docstring).

  sampler_kwargs: instruction, separator, suffix (the text around the earlier samples).
  """

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int,
               instruction: str = DEFAULT_INSTRUCTION, separator: str = DEFAULT_SEPARATOR,
               suffix: str = DEFAULT_SUFFIX):
    super().__init__(sampling=sampling, prompt_len=prompt_len)
    self.instruction, self.separator, self.suffix = instruction, separator, suffix

  def pieces(self, tokenizer) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The instruction, separator and suffix as int32 token arrays."""
    return tuple(jnp.asarray(np.asarray(tokenizer.encode(text), np.int32).reshape(-1))
                 for text in (self.instruction, self.separator, self.suffix))

  def draw(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
           num_samples: int) -> DependentRollout:
    """The dependent samples with the contexts they were drawn in (the sampler's core)."""
    drawing, tokenizer = policies.drawing, policies.trained.tokenizer
    tokens, valid = self.drawing_prompts(policies, problems)
    return sequential_generate(
        drawing.graphdef, drawing.params, tokens, valid, *self.pieces(tokenizer), rng,
        num_samples=num_samples, config=self.drawing_sampling(policies),
        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, bos_id=tokenizer.bos_id)

  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    out = self.draw(policies, problems, rng, num_samples=num_samples)
    prompt_tokens, prompt_valid = self.encode(policies, problems)
    policy_lp, entropy, score_flops = self.policy_scores(policies, prompt_tokens, prompt_valid,
                                                         out.tokens, out.mask)
    return RolloutBatch(prompt_tokens, prompt_valid, out.tokens, out.mask, out.lengths,
                        out.truncated, out.sample_logprobs, policy_lp, entropy,
                        out.flops + score_flops)


class SketchSampler(SequentialSampler):
  """`sketch` (SESA, arXiv 2510.15502): sequential sketches, parallel expansions.

  sampler_kwargs: sketch_len (tokens per sketch, 1 <= sketch_len < max_response_len),
  and the sequential sampler's instruction, separator, suffix.
  """

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, sketch_len: int = 4,
               **kwargs):
    super().__init__(sampling=sampling, prompt_len=prompt_len, **kwargs)
    if not isinstance(sketch_len, int) or not 1 <= sketch_len < sampling.max_new_tokens:
      raise ConfigError(f"sampler 'sketch': sketch_len must be an integer in [1, "
                        f"max_response_len={sampling.max_new_tokens}), got {sketch_len!r}")
    self.sketch_len = sketch_len

  def draw(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
           num_samples: int) -> DependentRollout:
    drawing, tokenizer = policies.drawing, policies.trained.tokenizer
    tokens, valid = self.drawing_prompts(policies, problems)
    return sketch_generate(
        drawing.graphdef, drawing.params, tokens, valid, *self.pieces(tokenizer), rng,
        num_samples=num_samples, config=self.drawing_sampling(policies),
        eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id, bos_id=tokenizer.bos_id,
        sketch_len=self.sketch_len)
