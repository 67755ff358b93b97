"""The RL loop, top to bottom (see the data path in DESIGN.md).

  curriculum -> problems -> sampler draws N responses each (explore policy)
  -> verifier rewards + judge clusters -> reward shaping -> advantages [B, N]
  -> PPO epochs x mini-batches of the jitted update -> metrics, eval, checkpoint

Determinism: every random choice of step s comes from (seed, s), and the
curriculum's position is checkpointed, so an interrupted run resumed from its
last checkpoint writes the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import functools
import signal
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from explore_rl.eval.evaluate import evaluate
from explore_rl.models import sharding
from explore_rl.objectives.aggregation import aggregate
from explore_rl.rewards import cluster_groups, get_judge
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.tasks import get_task, sample_problems
from explore_rl.tasks.curriculum import make_curriculum
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.models.logprobs import response_logprobs
from explore_rl.metrics_log import MetricsWriter
from explore_rl.training.objective import LossSpec, Objective
from explore_rl.training.rollout import ScoredRollout, sample_and_score
from explore_rl.training.state import TrainState, apply_if_finite, init_state, make_optimizer
from explore_rl.training.workdir import (checkpoint_dir, copy_tokenizer_files, fresh_policy,
                                         load_initial_policy, write_run_files)


class RLBatch(NamedTuple):
  """One mini-batch of R = (groups x N) rows."""
  prompt_tokens: jax.Array    # int32 [R, P]
  prompt_valid: jax.Array     # bool  [R, P]
  response_tokens: jax.Array  # int32 [R, M]
  response_mask: jax.Array    # bool  [R, M]
  old_logprobs: jax.Array     # fp32  [R, M]
  advantages: jax.Array       # fp32  [R]


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer", "loss_spec",
                                             "micro_batches", "temperature"),
                   donate_argnums=(3,))
def rl_update(graphdef, optimizer, loss_spec: LossSpec, state: TrainState, ref_params,
              batch: RLBatch, rng: jax.Array, *, micro_batches: int, temperature: float):
  """One optimizer update on a mini-batch, accumulated exactly over micro-batches.

  The loss is Σ_k num_k / max(Σ_k den_k, 1): the denominators depend only on the
  masks, so the global one is known before the first micro-batch. Token-level
  statistics inside a loss (Clip-Cov / KL-Cov covariance and selection counts)
  are taken over one micro-batch, i.e. over the whole (sharded) mini-batch when
  `micro_batches` is 1, as in the configs.
  """
  zeros = jnp.zeros(batch.response_mask.shape, jnp.float32)
  _, denominator = aggregate(zeros, batch.response_mask, mode=loss_spec.aggregation,
                             **dict(loss_spec.aggregation_kwargs))
  denominator = jnp.maximum(denominator, 1.0)
  split = lambda x: x.reshape(micro_batches, x.shape[0] // micro_batches, *x.shape[1:])
  micro = jax.tree.map(split, batch)
  keys = jax.random.split(rng, micro_batches)

  def micro_loss(params, mb: RLBatch, key):
    logp, entropy = response_logprobs(graphdef, params, mb.prompt_tokens, mb.prompt_valid,
                                      mb.response_tokens, mb.response_mask,
                                      temperature=temperature)
    ref = None
    if loss_spec.kl_coef:
      ref, _ = response_logprobs(graphdef, ref_params, mb.prompt_tokens, mb.prompt_valid,
                                 mb.response_tokens, mb.response_mask, temperature=temperature)
    num, den, metrics = loss_spec(logp, mb.old_logprobs, mb.advantages, mb.response_mask,
                                  rng=key, ref_logprobs=ref, entropy=entropy)
    metrics["entropy"] = entropy.sum() / jnp.maximum(mb.response_mask.sum(), 1)
    return num / denominator, metrics

  def body(grads, xs):
    mb, key = xs
    (loss, metrics), g = jax.value_and_grad(micro_loss, has_aux=True)(state.params, mb, key)
    return jax.tree.map(jnp.add, grads, g), (loss, metrics)

  grads0 = jax.tree.map(jnp.zeros_like, state.params)
  grads, (losses, metrics) = jax.lax.scan(body, grads0, (micro, keys))
  loss = losses.sum()
  new_state, finite = apply_if_finite(state, grads, loss, optimizer)
  metrics = jax.tree.map(jnp.mean, metrics)
  metrics.update(loss=loss, grad_norm=optax.global_norm(grads), update_skipped=~finite)
  return new_state, metrics


def _answer_ids(task, rollout: ScoredRollout) -> np.ndarray:
  """int32 [B, N]: per prompt, equal extracted answers share an id; unparseable -1."""
  n = rollout.num_samples
  out = np.full(rollout.rewards.shape, -1, np.int32)
  for b, problem in enumerate(rollout.problems):
    seen: dict = {}
    for j in range(n):
      answer = task.extract_answer(problem, rollout.responses[b * n + j])
      if answer is not None:
        out[b, j] = seen.setdefault(answer, len(seen))
  return out


def _select_groups(rewards: np.ndarray, keep: np.ndarray, num_groups: int,
                   dynamic: bool) -> np.ndarray:
  """Indices of the `num_groups` groups to train on (a static count).

  Groups the curriculum keeps come first. With DAPO dynamic sampling (arXiv
  2503.14476) the prompt batch is oversampled and groups whose rewards are all
  equal (no group-relative signal) go last; if too few informative groups
  remain, the others fill the batch (their GRPO advantages are 0 anyway).
  """
  priority = keep.astype(int)
  if dynamic:
    priority += 2 * (rewards.max(axis=1) > rewards.min(axis=1))
  return np.argsort(-priority, kind="stable")[:num_groups]


class RLTrainer:
  """Holds what a run needs; `run()` is the loop."""

  def __init__(self, config, workdir: str, *, progress: bool = True):
    self.config, self.workdir, self.progress = config, workdir, progress
    c = config
    self.objective = Objective(c.objective)                 # validates names first
    self.task = get_task(c.task, **c.task_kwargs)
    if c.curriculum == "mixture":
      raise ValueError("the RL trainer scores every problem with config.task, so it takes the "
                       "single-family curricula (uniform, adaptive), not 'mixture'")
    self.curriculum = make_curriculum(c.curriculum, task=self.task, seed=c.seed,
                                      difficulty=c.difficulty)
    self.judge = get_judge(c.judge, **c.judge_kwargs)
    self.embedder = get_judge("embedding") if self.objective.needs_embeddings else None
    self.mesh = sharding.make_mesh(dict(c.mesh))
    if c.init_from:
      self.tokenizer, model_config, self.graphdef, params = load_initial_policy(
          c.init_from, self.mesh, c.get("hf"))
      copy_tokenizer_files(c.init_from, workdir)
    else:
      self.tokenizer, model_config, self.graphdef, params = fresh_policy(c, self.mesh)
    self.model_config = model_config
    write_run_files(workdir, c, model_config)
    self.optimizer = make_optimizer(**c.optim, total_steps=c.total_steps)
    self.state = sharding.place_on_mesh(init_state(params, self.optimizer, c.seed), self.mesh)
    # The KL reference is the initial policy (also after a resume).
    self.ref_params = params if self.objective.loss_spec.kl_coef else None
    self.sampling = SamplingConfig(temperature=c.rollout.temperature, top_k=c.rollout.top_k,
                                   top_p=c.rollout.top_p, min_p=c.rollout.min_p,
                                   max_new_tokens=c.max_response_len)
    if c.rollout.old_logprobs not in ("sampler", "recompute"):
      raise ValueError(f"rollout.old_logprobs={c.rollout.old_logprobs!r}; valid: recompute, "
                       "sampler")
    filtered = (c.rollout.top_k, c.rollout.top_p, c.rollout.min_p) != (0, 1.0, 0.0)
    if c.rollout.old_logprobs == "sampler" and filtered:
      raise ValueError("old_logprobs='sampler' needs unfiltered sampling (top_k=0, top_p=1, "
                       "min_p=0); use 'recompute'")
    rows = c.rollout.prompts_per_step * c.rollout.num_samples
    mb_rows = rows // c.learner.mini_batches
    if rows % c.learner.mini_batches or mb_rows % c.learner.micro_batches or \
        (mb_rows // c.learner.micro_batches) % sharding.local_batch_divisor(self.mesh):
      raise ValueError(f"{rows} rows per step do not split into {c.learner.mini_batches} "
                       f"mini-batches x {c.learner.micro_batches} micro-batches divisible by the "
                       f"mesh's batch axes ({sharding.local_batch_divisor(self.mesh)})")
    self.eval_problems = sample_problems(self.task, c.seed + 7_777_777, c.eval.num_prompts,
                                         c.difficulty)
    self.ckpt = Checkpointer(checkpoint_dir(workdir), keep=c.get("keep_checkpoints", 3))
    self.start_step, self.counters = 0, {"updates_skipped_total": 0, "flops_sample": 0.0,
                                         "flops_train": 0.0}
    if self.ckpt.latest_step() is not None:
      self.state, meta = self.ckpt.restore(self.state)
      self.start_step = meta["step"]
      self.counters = meta["counters"]
      self.curriculum.load_state_dict(meta["curriculum"])

  # -- one step ------------------------------------------------------------------------------
  def _rollout(self, step: int, rng) -> tuple[ScoredRollout, np.ndarray, dict]:
    c = self.config
    oversample = c.objective.get("oversample", 1.0) if self.objective.dynamic_sampling else 1.0
    num_groups = c.rollout.prompts_per_step
    problems = self.curriculum.next_batch(int(np.ceil(num_groups * oversample)))
    scored = sample_and_score(self.graphdef, self.state.params, self.task, self.tokenizer,
                              problems, num_samples=c.rollout.num_samples,
                              sampling=self.sampling, prompt_len=c.max_prompt_len, rng=rng)
    keep = self.curriculum.update(problems, scored.correct.mean(axis=1).tolist())
    groups = _select_groups(scored.rewards, np.asarray(keep), num_groups,
                            self.objective.dynamic_sampling)
    return scored, groups, {"groups_informative": float(
        np.mean(scored.rewards.max(1) > scored.rewards.min(1)))}

  def _advantages(self, scored: ScoredRollout, rng) -> tuple[np.ndarray, np.ndarray, dict]:
    n = scored.num_samples
    b = len(scored.problems)
    context: dict = {"mask": np.ones((b, n), bool), "rng": rng,
                     "lengths": np.asarray(scored.rollout.lengths).reshape(b, n)}
    metrics = {}
    cluster_ids = None
    if self.objective.needs_clusters or self.config.log_clusters:
      prompts = [p.prompt for p in scored.problems]
      groups = [scored.responses[i * n:(i + 1) * n] for i in range(b)]
      cluster_ids = cluster_groups(self.judge, prompts, groups, scored.signatures)
      metrics["distinct_clusters"] = float(np.mean(
          [len(set(row[row >= 0].tolist())) for row in cluster_ids]))
      metrics.update({f"judge_{k}": v for k, v in self.judge.metrics().items()})
    context["cluster_ids"] = cluster_ids
    if self.embedder is not None:
      emb = self.embedder.embed(scored.responses)
      context["embeddings"] = emb.reshape(b, n, -1)
    if self.objective.needs_answers:
      context["answer_ids"] = _answer_ids(self.task, scored)
    rewards = self.objective.shape_rewards(scored.rewards, **context)
    adv = self.objective.advantages(rewards, **context)
    return rewards, adv, metrics

  def _update(self, scored: ScoredRollout, groups: np.ndarray, adv: np.ndarray, step: int,
              rng) -> dict:
    c = self.config
    n = scored.num_samples
    rows = (groups[:, None] * n + np.arange(n)).reshape(-1)                  # [G*N]
    ro = jax.device_get(scored.rollout)
    full = {
        "prompt_tokens": np.repeat(scored.prompt_tokens, n, axis=0)[rows],
        "prompt_valid": np.repeat(scored.prompt_valid, n, axis=0)[rows],
        "response_tokens": ro.tokens[rows], "response_mask": ro.mask[rows],
        "advantages": adv.reshape(-1)[rows],
    }
    if c.rollout.old_logprobs == "sampler":
      full["old_logprobs"] = ro.sample_logprobs[rows]
    else:
      full["old_logprobs"] = np.asarray(_recompute(
          self.graphdef, self.state.params, full["prompt_tokens"], full["prompt_valid"],
          full["response_tokens"], full["response_mask"], c.rollout.temperature))
    data_sharding = sharding.batch_sharding(self.mesh, 2)
    vec_sharding = sharding.batch_sharding(self.mesh, 1)
    perm_rng = np.random.default_rng([c.seed, step, 1])
    collected = []
    for epoch in range(c.learner.epochs):
      order = perm_rng.permutation(len(rows))
      for i, idx in enumerate(np.array_split(order, c.learner.mini_batches)):
        mb = RLBatch(**{k: jax.device_put(v[idx], vec_sharding if v.ndim == 1 else data_sharding)
                        for k, v in full.items()})
        key = jax.random.fold_in(rng, epoch * c.learner.mini_batches + i)
        self.state, metrics = rl_update(
            self.graphdef, self.optimizer, self.objective.loss_spec, self.state,
            self.ref_params, mb, key, micro_batches=c.learner.micro_batches,
            temperature=float(c.rollout.temperature))
        collected.append(metrics)
    metrics = jax.device_get(collected)
    out = {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}
    out["updates_skipped"] = int(sum(bool(m["update_skipped"]) for m in metrics))
    out.pop("update_skipped")
    tokens = float(full["response_mask"].sum() + full["prompt_valid"].sum())
    out["_train_tokens"] = tokens * c.learner.epochs
    return out

  # -- the loop ------------------------------------------------------------------------------
  def run(self) -> dict:
    c = self.config
    writer = MetricsWriter(self.workdir, total_steps=c.total_steps, initial_step=self.start_step,
                           desc="rl", progress=self.progress)
    base = jax.random.key(c.seed)
    n_params = self.model_config.num_params()
    consecutive_skips, last_eval = 0, {}
    # SIGINT finishes the step in flight, saves a checkpoint and exits cleanly; a
    # second Ctrl-C interrupts at once.
    interrupted = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
      interrupted.append(signum)
      signal.signal(signal.SIGINT, previous)

    if threading_main():
      signal.signal(signal.SIGINT, on_sigint)
    try:
      for step in range(self.start_step, c.total_steps):
        rng = jax.random.fold_in(base, step)
        k_sample, k_adv, k_update = jax.random.split(rng, 3)
        t0 = time.perf_counter()
        scored, groups, metrics = self._rollout(step, k_sample)
        t1 = time.perf_counter()
        rewards, adv, adv_metrics = self._advantages(scored, k_adv)
        t2 = time.perf_counter()
        upd = self._update(scored, groups, adv, step, k_update)
        t3 = time.perf_counter()

        sample_tokens = float(np.asarray(scored.rollout.mask).sum() + scored.prompt_valid.sum()
                              * scored.num_samples)
        self.counters["flops_sample"] += 2.0 * n_params * sample_tokens
        self.counters["flops_train"] += 6.0 * n_params * upd.pop("_train_tokens")
        self.counters["updates_skipped_total"] += upd["updates_skipped"]
        consecutive_skips = consecutive_skips + 1 if upd["updates_skipped"] else 0
        mask = np.asarray(scored.rollout.mask)
        sel = scored.rewards[groups]
        metrics.update(adv_metrics)
        metrics.update({
            "reward_mean": float(sel.mean()), "reward_std": float(sel.std()),
            "shaped_reward_mean": float(rewards[groups].mean()),
            "train_pass@1": float(scored.correct[groups].mean()),
            "train_distinct_strategies": float(
                scored.distinct_successful_strategies()[groups].mean()),
            "rollout_entropy": float((np.asarray(scored.rollout.entropy) * mask).sum()
                                     / max(mask.sum(), 1)),
            "response_len": float(mask.sum(1).mean()),
            "truncated_frac": float(np.asarray(scored.rollout.truncated).mean()),
            "advantage_abs_mean": float(np.abs(adv[groups]).mean()),
            "time_sample": t1 - t0, "time_score": t2 - t1, "time_update": t3 - t2,
            "step_time": t3 - t0, "tokens_per_s": sample_tokens / (t3 - t0),
            **upd, **self.counters, **{f"world_{k}": v for k, v in self.curriculum.stats().items()},
        })
        done = step + 1
        if done % c.eval_every == 0 or done == c.total_steps:
          last_eval = evaluate(self.graphdef, self.state.params, self.task, self.tokenizer,
                               self.eval_problems, num_samples=c.eval.num_samples,
                               sampling=SamplingConfig(temperature=c.eval.temperature,
                                                       max_new_tokens=c.max_response_len),
                               prompt_len=c.max_prompt_len, rng=jax.random.key(c.seed + 1))
          metrics.update(last_eval)
        writer.write(done, metrics)
        if consecutive_skips >= c.max_consecutive_skips:
          raise FloatingPointError(
              f"{consecutive_skips} consecutive steps had NaN/Inf losses or gradients "
              f"(step {done}); stopping. Lower the learning rate or check the rewards.")
        if done % c.checkpoint_every == 0 or done == c.total_steps or interrupted:
          self._save(done)
        if interrupted:
          print(f"\ninterrupted: saved step {done} in {checkpoint_dir(self.workdir)}; "
                "run the same command to resume")
          break
    finally:
      if threading_main():
        signal.signal(signal.SIGINT, previous)
      writer.close()
      self.ckpt.close()
    return last_eval

  def _save(self, step: int):
    self.ckpt.save(step, self.state, {"step": step, "counters": self.counters,
                                      "curriculum": self.curriculum.state_dict()})


def threading_main() -> bool:
  """Signal handlers can only be installed from the main thread."""
  import threading
  return threading.current_thread() is threading.main_thread()


@functools.partial(jax.jit, static_argnames=("graphdef", "temperature"))
def _recompute(graphdef, params, prompt_tokens, prompt_valid, response_tokens, response_mask,
               temperature):
  return response_logprobs(graphdef, params, prompt_tokens, prompt_valid, response_tokens,
                           response_mask, temperature=temperature)[0]


def train_rl(config, workdir: str, *, progress: bool = True) -> dict:
  return RLTrainer(config, workdir, progress=progress).run()
