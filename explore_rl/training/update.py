"""The jitted RL update: one optimizer step on a mini-batch of sampled responses.

`rl_update` computes the loss of `LossSpec` (the loss terms the config turns on, summed per
token and aggregated; training/objective_builder.py), accumulated exactly over micro-batches, and
applies the optimizer unless the loss or a gradient is not finite. The trainers
(training/epochs.py, training/two_policy.py) build the `RLBatch` mini-batches and call it.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from explore_rl.models.logprobs import (logprobs_from_logits, packed_response_logprobs,
                                        response_logits, response_logprobs)
from explore_rl.objectives.aggregation import aggregate
from explore_rl.objectives.loss_terms import TokenInputs
from explore_rl.training.objective_builder import LossSpec
from explore_rl.training.state import TrainState, apply_if_finite, grad_norm


class RLBatch(NamedTuple):
  """One mini-batch of R = (groups x N) rows."""
  prompt_tokens: jax.Array       # int32 [R, P]
  prompt_valid: jax.Array        # bool  [R, P]
  response_tokens: jax.Array     # int32 [R, M]
  response_mask: jax.Array       # bool  [R, M]
  old_logprobs: jax.Array        # fp32  [R, M]  π_old, the ratio's denominator
  behaviour_logprobs: jax.Array  # fp32  [R, M]  μ, the distribution that drew the tokens
  advantages: jax.Array          # fp32  [R]
  # The teacher's privileged prompt (self-distillation, `objective.distill`); None: the
  # teacher reads `prompt_tokens` (or there is no distillation term).
  teacher_prompt_tokens: jax.Array | None = None  # int32 [R, P_t]
  teacher_prompt_valid: jax.Array | None = None   # bool  [R, P_t]
  # The same rows packed several to a row (training/packing.py); None: the padded layout.
  packed_tokens: jax.Array | None = None     # int32 [R_p, L]
  packed_segments: jax.Array | None = None   # int32 [R_p, L]
  packed_positions: jax.Array | None = None  # int32 [R_p, L]
  packed_index: jax.Array | None = None      # int32 [C, R/C, M], C chunks (packing.py)


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer", "loss_spec",
                                             "micro_batches", "temperature",
                                             "teacher_graphdef"),
                   donate_argnums=(3,))
def rl_update(graphdef, optimizer, loss_spec: LossSpec, state: TrainState, ref_params,
              batch: RLBatch, rng: jax.Array, *, micro_batches: int, temperature: float,
              teacher_params=None, teacher_graphdef=None):
  """One optimizer update on a mini-batch, accumulated exactly over micro-batches.

  The loss is Σ_k num_k / max(Σ_k den_k, 1): the denominators depend only on the
  masks, so the global one is known before the first micro-batch. Token choices
  (`LossSpec.select`: Clip-Cov's and KL-Cov's tokens, a token mask) are made over the
  whole (sharded) mini-batch with one PRNG key, so they do not depend on `micro_batches`
  or the devices: with one micro-batch inside its pass, with several from a forward pass
  over every micro-batch first (the current policy's log-probs and entropies; ~1/3 of a
  forward + backward more). `ref_params` must not alias `state` (it is donated).

  The forward passes are those the loss terms need (`loss_spec.needs`): the reference
  policy's log-probs for a KL term, the full logits and the teacher's for a distillation
  term. The teacher is (teacher_graphdef or graphdef, teacher_params or the live params)
  on the batch's teacher prompt (or the plain one), under stop_gradient: it moves the
  student only. A batch with `packed_*` fields runs the policy and reference forward
  passes over the packed rows (training/packing.py): same loss, fewer padding slots.
  """
  zeros = jnp.zeros(batch.response_mask.shape, jnp.float32)
  _, denominator = aggregate(zeros, batch.response_mask, mode=loss_spec.aggregation,
                             **dict(loss_spec.aggregation_kwargs))
  denominator = jnp.maximum(denominator, 1.0)
  split = lambda x: x.reshape(micro_batches, x.shape[0] // micro_batches, *x.shape[1:])
  micro = jax.tree.map(split, batch)
  select_key, rng = jax.random.split(rng)
  keys = jax.random.split(rng, micro_batches)
  needs = loss_spec.needs

  def logprobs(params, mb: RLBatch):
    if mb.packed_tokens is not None:
      return packed_response_logprobs(graphdef, params, mb.packed_tokens, mb.packed_segments,
                                      mb.packed_positions, mb.packed_index, mb.response_tokens,
                                      mb.response_mask, temperature=temperature)
    return response_logprobs(graphdef, params, mb.prompt_tokens, mb.prompt_valid,
                             mb.response_tokens, mb.response_mask, temperature=temperature)

  def teacher_logits(params, mb: RLBatch):
    t_prompt, t_valid = (mb.prompt_tokens, mb.prompt_valid) \
        if mb.teacher_prompt_tokens is None else (mb.teacher_prompt_tokens,
                                                  mb.teacher_prompt_valid)
    t_params = jax.lax.stop_gradient(params if teacher_params is None else teacher_params)
    return jax.lax.stop_gradient(response_logits(
        graphdef if teacher_graphdef is None else teacher_graphdef, t_params, t_prompt,
        t_valid, mb.response_tokens, mb.response_mask, temperature=temperature))

  def inputs(mb: RLBatch, logp, entropy, **optional) -> TokenInputs:
    return TokenInputs(logp, mb.old_logprobs, mb.advantages, mb.response_mask,
                       mb.behaviour_logprobs, entropy, mb.response_tokens, **optional)

  def micro_loss(params, mb: RLBatch, key, selected):
    logits = None
    if "logits" in needs:
      logits = response_logits(graphdef, params, mb.prompt_tokens, mb.prompt_valid,
                               mb.response_tokens, mb.response_mask, temperature=temperature)
      logp, entropy = logprobs_from_logits(logits, mb.response_tokens, mb.response_mask)
    else:
      logp, entropy = logprobs(params, mb)
    x = inputs(
        mb, logp, entropy, logits=logits,
        ref_logprobs=logprobs(ref_params, mb)[0] if "ref_logprobs" in needs else None,
        teacher_logits=teacher_logits(params, mb) if "teacher_logits" in needs else None)
    if selected is None and loss_spec.selects:  # one micro-batch: the whole mini-batch
      selected = loss_spec.select(jax.lax.stop_gradient(x), rng=select_key)
    num, _, metrics = loss_spec(x, rng=key, selected=selected)
    metrics.pop("selected", None)
    metrics["entropy"] = entropy.sum() / jnp.maximum(mb.response_mask.sum(), 1)
    return num / denominator, metrics

  selected = None
  if loss_spec.selects and micro_batches > 1:  # choose over the mini-batch, then split
    logp, entropy = jax.lax.map(lambda mb: logprobs(state.params, mb), micro)
    whole = lambda x: x.reshape(-1, *x.shape[2:])
    selected = jax.tree.map(split, loss_spec.select(
        inputs(batch, whole(logp), whole(entropy)), rng=select_key))

  def body(grads, xs):
    mb, key, chosen = xs
    (loss, metrics), g = jax.value_and_grad(micro_loss, has_aux=True)(state.params, mb, key,
                                                                      chosen)
    return jax.tree.map(jnp.add, grads, g), (loss, metrics)

  grads0 = jax.tree.map(jnp.zeros_like, state.params)
  grads, (losses, metrics) = jax.lax.scan(body, grads0, (micro, keys, selected))
  loss = losses.sum()
  new_state, finite = apply_if_finite(state, grads, loss, optimizer)
  metrics = jax.tree.map(jnp.mean, metrics)
  metrics.update(loss=loss, grad_norm=grad_norm(grads),
                 update_norm=optax.global_norm(jax.tree.map(jnp.subtract, new_state.params,
                                                            state.params)),
                 update_skipped=~finite)
  return new_state, metrics
