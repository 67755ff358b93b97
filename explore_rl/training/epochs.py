"""The update epochs of one RL step: the rollout as an `RLBatch`, cut into shuffled
mini-batches on the host, packed, placed on the mesh, each one jitted `rl_update`.

`rl_epochs(run, scored, advantages, step, rng)` is the RL trainer's update component;
the two-policy and preference trainers pass their own (training/two_policy.py,
training/preference_trainer.py), built from `learner_epochs` or not at all.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.models import sharding
from explore_rl.models.flops import sequence_flops
from explore_rl.models.logprobs import score_responses
from explore_rl.sampling.rollout import ScoredRollout
from explore_rl.sampling.teacher_prompts import encode_teacher_prompts
from explore_rl.training.async_rollouts import max_staleness
from explore_rl.training.distill_teacher import ema_update
from explore_rl.training.flops import add_flops, add_update_flops
from explore_rl.training.update import RLBatch, rl_update


def rl_batch(run, scored: ScoredRollout, adv: np.ndarray) -> RLBatch:
  """The step's R = B·N rows from the rollout's host copy: π_old the sampler's log-probs
  (or recomputed, `rollout.old_logprobs="recompute"`: its FLOPs counted), the teacher's
  privileged prompts when a distillation term reads them. Rollouts drawn ahead
  (`rollout.max_staleness` >= 1) always recompute: the sampler's are an older policy's,
  which `objective.is_correction` weights as μ (docs/async.md)."""
  c, ro, n = run.config, scored.host, scored.num_samples
  rep = lambda x: np.repeat(x, n, axis=0)
  old = ro.policy_logprobs
  if c.rollout.old_logprobs == "recompute" or max_staleness(c):
    dev = scored.batch
    old = score_responses(run.policy.graphdef, run.state.params,
                          jnp.repeat(dev.prompt_tokens, n, axis=0),
                          jnp.repeat(dev.prompt_valid, n, axis=0), dev.tokens, dev.mask,
                          temperature=float(c.rollout.temperature))[0]
    length = dev.prompt_tokens.shape[1] + dev.tokens.shape[1]
    add_flops(run.counters, "recompute",
              sequence_flops(run.policy.config, dev.tokens.shape[0], length))
  teacher_prompt = (None, None)
  if run.parts.distill is not None and run.parts.distill.privileged:
    teacher_prompt = tuple(map(rep, encode_teacher_prompts(
        run.policy.tokenizer, scored.problems, run.parts.teacher_prompt_len, run.parts.task)))
  return RLBatch(rep(ro.prompt_tokens), rep(ro.prompt_valid), ro.tokens, ro.mask, old,
                 ro.behaviour_logprobs, adv.reshape(-1).astype(np.float32), *teacher_prompt)


def rl_epochs(run, scored: ScoredRollout, adv: np.ndarray, step: int, rng) -> dict:
  """learner.epochs passes of the run's objective over the rollout; updates `run.state`
  (and an EMA teacher after each update). With an importance correction, or rollouts drawn
  ahead of the learner, its diagnostics over the whole rollout (`mismatch/...`,
  objectives/importance.py)."""
  c = run.config
  distill = distill_args(run)
  teacher_config = (run.teacher or run.policy).config

  def update(mb: RLBatch, key) -> dict:
    run.state, metrics = rl_update(
        run.policy.graphdef, run.parts.optimizer, run.parts.objective.loss_spec, run.state,
        run.ref_params, mb, key, micro_batches=c.learner.micro_batches,
        temperature=float(c.rollout.temperature), **distill)
    add_update_flops(run.counters, run.policy.config, mb, run.parts.objective.loss_spec,
                     micro_batches=c.learner.micro_batches, teacher_config=teacher_config)
    if run.ema_ckpt is not None:
      run.teacher = run.teacher.with_params(ema_update(
          run.teacher.params, run.state.params, run.parts.distill.ema_decay))
    return metrics

  batch = rl_batch(run, scored, adv)
  out = learner_epochs(run, batch, step, rng, update,
                       pack=run.parts.distill is None and c.learner.get("pack", True))
  out.update(run.parts.objective.mismatch_metrics(batch.old_logprobs, batch.behaviour_logprobs,
                                                  batch.response_mask,
                                                  always=max_staleness(c) > 0))
  return out


def distill_args(run) -> dict:
  """rl_update's teacher arguments; none without a distillation term (the plain update)."""
  if run.parts.distill is None:
    return {}
  live = run.parts.distill.teacher == "live" and run.teacher is None
  graphdef = None if live or run.teacher.graphdef is run.policy.graphdef \
      else run.teacher.graphdef
  return dict(teacher_params=None if live else run.teacher.params, teacher_graphdef=graphdef)


def packed(row_layout, mb: RLBatch) -> RLBatch:
  """`mb` (host arrays) with its rows packed (training/packing.py), micro-batch by
  micro-batch, in the layout `row_layout` chooses; `mb` as it is where that is the
  padded one."""
  rows = row_layout(mb.prompt_tokens, mb.prompt_valid, mb.response_tokens, mb.response_mask)
  if rows is None:
    return mb
  return mb._replace(**{f"packed_{k}": v for k, v in rows._asdict().items()})


def on_mesh(mesh, batch: RLBatch) -> RLBatch:
  """`batch`'s arrays on the mesh, rows over its batch axes."""
  return jax.tree.map(
      lambda x: jax.device_put(x, sharding.batch_sharding(mesh, np.ndim(x))), batch)


def learner_epochs(run, full: RLBatch, step: int, rng, update, *, pack: bool = False) -> dict:
  """`update(mini-batch, key) -> metrics` over learner.epochs passes of `full` in
  learner.mini_batches shuffled mini-batches (order from (seed, step)), each cut on the
  host, packed when `pack` and placed on the mesh; returns the mean metrics and the
  number of skipped updates.

  Cutting on the host: the leaves of `full` still on the device (a recomputed π_old) come
  over once; an eager device gather per array and mini-batch cost a dispatch each, a third
  of the update's time at 32 rows per step (benchmarks/README.md)."""
  c = run.config
  perm_rng = np.random.default_rng([c.seed, step, 1])
  full = to_host(full)
  collected = []
  for epoch in range(c.learner.epochs):
    order = perm_rng.permutation(full.advantages.shape[0])
    for i, idx in enumerate(np.array_split(order, c.learner.mini_batches)):
      mb = jax.tree.map(lambda x: x[idx], full)
      mb = on_mesh(run.mesh, packed(run.parts.row_layout, mb) if pack else mb)
      collected.append(update(mb, jax.random.fold_in(rng, epoch * c.learner.mini_batches + i)))
  metrics = to_host(collected)
  out = {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}
  out["updates_skipped"] = int(sum(bool(m["update_skipped"]) for m in metrics))
  out.pop("update_skipped")
  return out
