"""Train state and optimizer: plain pytrees, so the update is a pure jitted function.

Low-precision parameters (a bf16 model, `ModelConfig.param_dtype`): the optimizer's
moments live in fp32 and the update is computed in fp32, p ← bf16(fp32(p) + u(fp32(g))),
so Adam's v = E[g²] neither underflows nor rounds to bf16's 8 mantissa bits. For fp32
parameters every cast is the identity.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from explore_rl import settings
from explore_rl.models import lora


class TrainState(NamedTuple):
  params: Any
  opt_state: Any
  step: jax.Array        # int32 [], optimizer updates applied
  rng: jax.Array         # uint32 [2] raw key data (checkpoint friendly)


# Memoised: the optimizer is a static argument of the jitted updates, so runs (seeds,
# trainers of one test session) with equal hyper-parameters share one compiled update.
@functools.lru_cache(maxsize=None)
def make_optimizer(*, learning_rate: float, warmup_steps: int = 0, total_steps: int = 0,
                   weight_decay: float = 0.0, grad_clip: float = 1.0, b1: float = 0.9,
                   b2: float = 0.999, schedule: str = "constant") -> optax.GradientTransformation:
  """AdamW with global-norm clipping and a constant or cosine schedule after warmup."""
  # warmup_steps=0 means none: the first update already uses the full rate (a linear
  # warmup of length 1 would make it a no-op).
  if schedule == "cosine":
    decay = max(total_steps - warmup_steps, 1)
    lr = optax.warmup_cosine_decay_schedule(0.0, learning_rate, warmup_steps,
                                            warmup_steps + decay) if warmup_steps else \
        optax.cosine_decay_schedule(learning_rate, decay)
  elif schedule == "constant":
    lr = optax.join_schedules([optax.linear_schedule(0.0, learning_rate, warmup_steps),
                               optax.constant_schedule(learning_rate)], [warmup_steps]) \
        if warmup_steps else optax.constant_schedule(learning_rate)
  else:
    raise ValueError(f"unknown schedule {schedule!r}; valid: constant, cosine")
  return optax.chain(optax.clip_by_global_norm(grad_clip),
                     optax.adamw(lr, b1=b1, b2=b2, weight_decay=weight_decay))


def optimizer_from_config(optim, total_steps: int) -> optax.GradientTransformation:
  """`make_optimizer` from `config.optim`, its settings checked first: an unknown,
  missing or mistyped key, or a bad value, is one ConfigError line (settings.py)."""
  return settings.build(make_optimizer, {**optim, "total_steps": total_steps},
                        "optimizer (config.optim)")


@functools.lru_cache(maxsize=None)
def _adapters_only(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
  return optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()},
                               lora.param_labels)


def for_params(optimizer: optax.GradientTransformation, params) -> optax.GradientTransformation:
  """`optimizer` as it applies to `params`: on a LoRA model (models/lora.py) it updates the
  adapters only and keeps only their moments (the base weights' updates are zero)."""
  return _adapters_only(optimizer) if lora.has_adapters(params) else optimizer


def _fp32(tree):
  return jax.tree.map(lambda x: x.astype(jnp.float32), tree)


def init_state(params, optimizer: optax.GradientTransformation, seed: int) -> TrainState:
  """Step 0; the optimizer state (moments) is fp32 whatever the parameters' dtype."""
  return TrainState(params, for_params(optimizer, params).init(_fp32(params)), jnp.int32(0),
                    jax.random.key_data(jax.random.key(seed)))


def all_finite(tree) -> jax.Array:
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def grad_norm(grads) -> jax.Array:
  """The global norm of the gradients of what is trained: a LoRA run's adapters only (its
  base's gradients are constant zeros, whose reduction XLA would constant-fold)."""
  return optax.global_norm(lora.drop_base(grads))


def apply_if_finite(state: TrainState, grads, loss, optimizer) -> tuple[TrainState, jax.Array]:
  """Apply the update unless the loss or a gradient is NaN/Inf (then keep the state).

  Returns (new state, finite flag). The caller counts skipped updates and stops a
  persistently failing run. The choice is one `lax.cond`, not a `where` per leaf: XLA:CPU's
  fusion copied the flag's chain of one `and` per leaf into each of the ~3 x leaves selects
  (SmolLM2: 272 leaves; the update's HLO grew from 3 to 90 MB in fusion and compiled for
  856 s; an optimization barrier does not survive XLA:CPU's pipeline).
  """
  # A LoRA run's frozen base has constant zero gradients: reducing them would hand XLA
  # 135M-element reductions to constant-fold at compile time (minutes on a CPU).
  finite = jnp.isfinite(loss) & all_finite(lora.drop_base(grads))

  def update(state):
    updates, opt_state = for_params(optimizer, state.params).update(
        _fp32(grads), state.opt_state, _fp32(state.params))
    params = jax.tree.map(lambda p, u: (p.astype(jnp.float32) + u).astype(p.dtype),
                          state.params, updates)               # optax.apply_updates, in fp32
    return TrainState(params, opt_state, state.step + 1, state.rng)

  return jax.lax.cond(finite, update, lambda state: state, state), finite
