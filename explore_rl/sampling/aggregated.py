"""Aggregated decoding: student and teacher prompts decoded side by side, tokens drawn from p*.

The sampling half of privileged self-distillation (docs/algorithms.md,
"Distillation and self-distillation"): for problems the student rarely solves
alone, each token is drawn from the aggregate p* = aggregate_logits(z_s, z_t) of the
student's logits on the plain prompt and the teacher's on the privileged prompt
(problem + solution), and the same token is appended to both contexts. How far
p* leans towards the teacher is the aggregation's (`aggregate_logits`): `poe`
reweights the student's distribution by the teacher's at every step and never
proposes a token the student gives no probability, `interp` moves a fixed geometric
fraction s, `trust_region` as far as a per-token KL budget allows.

Layout as `generate.py`: both prompt batches are left-padded (student [B, P_s],
teacher [B, P_t], row b of each the same problem), each is prefilled once into its
own KV cache of P + max_new_tokens slots, the N samples of a prompt share copies of
its caches, and one `lax.while_loop` runs both models per step (the same params, or
a second param set for a separate teacher), stopping when every row emitted EOS.
FLOPs (`Rollout.flops`, models/flops.py): both prefills over P + max_new_tokens slots,
and every step run, both models, all B·N rows, over their whole caches.

The returned `Rollout` (generate.py) carries both sets of log-probs, so importance
correction works unchanged:
  logprobs         log π_T(y_t): the student at temperature T on the plain prompt
                   (the policy the learner trains), before top-k/p and min-p;
  sample_logprobs  the behaviour log-probs: log-prob of y_t under the distribution
                   that drew it (p* after top-k/p and min-p; 0 when greedy);
  entropy          the entropy of π_T (the student).
With T = 1 and no truncation, sample_logprobs is log p*(y_t): the target log-probs
of the sampled-token distillation loss, for free.

Temperature: z_s / T and z_t / T are aggregated (then top-k/p/min-p act on p*).
For `poe`, `interp` and `teacher` this equals tempering p* itself; for
`trust_region` the KL budget is measured against π_T, the trained policy.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import chex
import jax
import jax.numpy as jnp
from flax import nnx

from explore_rl.models import sharding
from explore_rl.models.flops import forward_flops
from explore_rl.models.transformer import KVCache, causal_mask, positions_from_mask
from explore_rl.objectives.distillation import AGGREGATION_METHODS, aggregate_logits
from explore_rl.objectives.shapes import assert_like
from explore_rl.sampling.generate import Rollout, as_rollout, empty_outputs, record_step
from explore_rl.sampling.processors import SamplingConfig, sample_token
from explore_rl.sampling.rollout import RolloutBatch
from explore_rl.sampling.samplers import Policies, Sampler
from explore_rl.sampling.teacher_prompts import (default_teacher_prompt_len,
                                                 encode_teacher_prompts)
from explore_rl.tasks.base import Problem, Task

__all__ = ["AggregatedSampler", "AggregationConfig", "aggregated_generate"]


@dataclasses.dataclass(frozen=True)
class AggregationConfig:
  """How p* is formed and sampled; hashable, so it is a static jit argument.

  method, alpha, s, kl_budget: `aggregate_logits`'s. temperature (0 = greedy),
  top_k, top_p, min_p, max_new_tokens: as `SamplingConfig`; the truncations act on p*.
  """
  method: str = "poe"
  alpha: float = 1.0
  s: float = 0.5
  kl_budget: float = 0.1
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0
  min_p: float = 0.0
  max_new_tokens: int = 64

  def __post_init__(self):
    if self.method not in AGGREGATION_METHODS:
      raise ValueError(f"unknown aggregation method {self.method!r}; "
                       f"valid: {list(AGGREGATION_METHODS)}")
    if self.temperature < 0 or self.max_new_tokens < 1:
      raise ValueError(f"need temperature >= 0 and max_new_tokens >= 1, got {self}")

  @property
  def processors(self) -> SamplingConfig:
    """The truncations applied to log p* (temperature already applied: 1, or 0 = greedy)."""
    return SamplingConfig(temperature=1.0 if self.temperature > 0 else 0.0, top_k=self.top_k,
                          top_p=self.top_p, min_p=self.min_p,
                          max_new_tokens=self.max_new_tokens)

  def tempered(self, logits: jax.Array) -> jax.Array:
    """fp32 logits / T (as they are when greedy)."""
    logits = logits.astype(jnp.float32)
    return logits / self.temperature if self.temperature > 0 else logits

  def aggregate(self, student_logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
    """log p* [..., V] of the tempered logits: the distribution each token is drawn from
    (before top-k/p and min-p)."""
    return aggregate_logits(self.tempered(student_logits), self.tempered(teacher_logits),
                            method=self.method, alpha=self.alpha, s=self.s,
                            kl_budget=self.kl_budget)


def _prefill(model, tokens: jax.Array, valid: jax.Array, m: int):
  """Prefill one prompt batch: (last logits [B, V], cache, key_valid [B, P+M], next_pos [B])."""
  b, p = tokens.shape
  cache = KVCache.zeros(model.config, b, p + m)
  key_valid = jnp.zeros((b, p + m), bool).at[:, :p].set(valid)
  mask = jnp.pad(causal_mask(valid), ((0, 0), (0, 0), (0, m)))  # [B, P, P+M]
  hidden, cache = model(tokens, positions_from_mask(valid), mask, cache, 0, head=False)
  return (model.logits(hidden[:, -1]), cache, key_valid,
          valid.sum(axis=1).astype(jnp.int32))


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples", "config", "eos_id",
                                             "pad_id", "teacher_graphdef"))
def aggregated_generate(graphdef, params, prompt_tokens: jax.Array, prompt_valid: jax.Array,
                        teacher_tokens: jax.Array, teacher_valid: jax.Array, rng: jax.Array, *,
                        num_samples: int, config: AggregationConfig, eos_id: int, pad_id: int,
                        teacher_params=None, teacher_graphdef=None) -> Rollout:
  """Sample `num_samples` responses per problem, each token from p* = aggregate(student, teacher).

  prompt_tokens/prompt_valid [B, P_s]: the student's (plain) prompts, left-padded;
  teacher_tokens/teacher_valid [B, P_t]: the teacher's (privileged) prompts of the same B
  problems, left-padded. The teacher is (teacher_graphdef or graphdef, teacher_params or
  params): by default the same model. Returns a `Rollout` with rows prompt-major (row
  b*N + j is sample j of problem b); see the module docstring for its log-probs.
  """
  assert_like("prompt_tokens", prompt_tokens, prompt_valid=prompt_valid)
  assert_like("teacher_tokens", teacher_tokens, teacher_valid=teacher_valid)
  chex.assert_equal_shape_prefix([prompt_tokens, teacher_tokens], 1, custom_message=(
      "teacher_tokens must hold as many problems as prompt_tokens"))
  student = nnx.merge(graphdef, params)
  teacher = nnx.merge(graphdef if teacher_graphdef is None else teacher_graphdef,
                      params if teacher_params is None else teacher_params)
  b, p_s = prompt_tokens.shape
  p_t = teacher_tokens.shape[1]
  m = config.max_new_tokens

  last_s, cache_s, kv_s, pos_s = _prefill(student, prompt_tokens, prompt_valid, m)
  last_t, cache_t, kv_t, pos_t = _prefill(teacher, teacher_tokens, teacher_valid, m)

  # Share each prompt's caches among its N samples (copies, not N prefills).
  rep = lambda x: jnp.repeat(x, num_samples, axis=0)
  cache_s, cache_t = jax.tree.map(rep, cache_s), jax.tree.map(rep, cache_t)
  last_s, kv_s, pos_s, last_t, kv_t, pos_t = map(rep, (last_s, kv_s, pos_s, last_t, kv_t, pos_t))
  rows = b * num_samples

  def cond(state):
    t, done = state[0], state[3]
    return (t < m) & ~jnp.all(done)

  def body(state):
    t, rng, (cache_s, cache_t), done, (last_s, last_t), (kv_s, kv_t), out = state
    rng, step_rng = jax.random.split(rng)
    agg = config.aggregate(last_s, last_t)                            # log p* [rows, V]
    tok, sample_lp = sample_token(step_rng, agg, config.processors)
    out, tok, done = record_step(out, t, tok, sample_lp, config.tempered(last_s), done,
                                 eos_id=eos_id, pad_id=pad_id)
    # Feed the token to both contexts, at slot P + t of each cache.
    kv_s = kv_s.at[:, p_s + t].set(True)
    kv_t = kv_t.at[:, p_t + t].set(True)
    logits_s, cache_s = student(tok[:, None], (pos_s + t)[:, None], kv_s[:, None, :], cache_s,
                                p_s + t)
    logits_t, cache_t = teacher(tok[:, None], (pos_t + t)[:, None], kv_t[:, None, :], cache_t,
                                p_t + t)
    return (t + 1, rng, (cache_s, cache_t), done, (logits_s[:, 0], logits_t[:, 0]),
            (kv_s, kv_t), out)

  state = (jnp.int32(0), rng, (cache_s, cache_t), jnp.zeros((rows,), bool), (last_s, last_t),
           (kv_s, kv_t), empty_outputs(rows, m, pad_id))
  steps, _, _, done, _, _, out = jax.lax.while_loop(cond, body, state)
  flops = sum(forward_flops(model.config, b, p, p + m) + forward_flops(model.config, rows, steps,
                                                                       p + m)
              for model, p in ((student, p_s), (teacher, p_t)))
  return as_rollout(out, done, steps, flops)


class AggregatedSampler(Sampler):
  """`rollout.sampler="aggregated"`: each token drawn from p* = aggregate(student, teacher).

  The student is `policies.trained` on the plain prompt `problem.prompt`; the teacher is
  `policies.teacher` (None: the same params, i.e. the live policy) on the privileged prompt
  `Task.teacher_prompt(problem)` (docs/algorithms.md, "Aggregated sampling"). Behaviour
  log-probs are log p*(y_t) (after top-k/p, min-p), policy log-probs the student's
  log π_T(y_t); `objective.is_correction` weights the loss by π_old/μ per token or per
  sequence (docs/algorithms.md, "Importance corrections": only a sequence-level weight
  makes the update the student's policy gradient).

  sampler_kwargs: method (poe | interp | trust_region | teacher), alpha, s, kl_budget
  (`objectives.distillation.aggregate_logits`), teacher_prompt_len (0: the default of
  `default_teacher_prompt_len`). `task` is passed by the trainer (`takes_task`), so each
  problem's privileged prompt comes from its own family (`tasks.task_of`).
  """
  takes_task = True

  def __init__(self, *, sampling: SamplingConfig, prompt_len: int, method: str = "poe",
               alpha: float = 1.0, s: float = 0.5, kl_budget: float = 0.1,
               teacher_prompt_len: int = 0, task: Task | None = None):
    super().__init__(sampling=sampling, prompt_len=prompt_len)
    self.config = AggregationConfig(
        method=method, alpha=float(alpha), s=float(s), kl_budget=float(kl_budget),
        temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p,
        min_p=sampling.min_p, max_new_tokens=sampling.max_new_tokens)
    self.teacher_prompt_len = int(teacher_prompt_len) or default_teacher_prompt_len(
        prompt_len, sampling.max_new_tokens)
    self.task = task

  def __call__(self, policies: Policies, problems: Sequence[Problem], rng: jax.Array, *,
               num_samples: int) -> RolloutBatch:
    if policies.behaviour is not None:
      raise ValueError("the aggregated sampler draws from the trained policy and its teacher; "
                       "it takes no behaviour policy")
    student, teacher = policies.trained, policies.teacher
    tokenizer = student.tokenizer
    prompt_tokens, prompt_valid = self.encode(policies, problems)
    teacher_tokens, teacher_valid = encode_teacher_prompts(tokenizer, problems,
                                                           self.teacher_prompt_len, self.task)
    out = aggregated_generate(
        student.graphdef, student.params, prompt_tokens, prompt_valid,
        *sharding.shard_batch(student.params, teacher_tokens, teacher_valid), rng,
        num_samples=num_samples,
        config=self.config, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id,
        teacher_params=None if teacher is None else teacher.params,
        teacher_graphdef=None if teacher is None else teacher.graphdef)
    return RolloutBatch(prompt_tokens, prompt_valid, out.tokens, out.mask, out.lengths,
                        out.truncated, out.sample_logprobs, out.logprobs, out.entropy, out.flops)
