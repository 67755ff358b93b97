"""SFT warm start on a task's multi-strategy demonstrations.

Each step draws problems from a seed stream fixed by (seed, step), so a resumed
run sees the same data; each problem contributes `demos_per_problem`
demonstrations with several distinct correct strategies and a few realistic
mistakes, giving RL a prior with real but imperfect coverage. Loss: token-mean
NLL of the response tokens (prompt tokens are context only).

With `curriculum="mixture"` and `curriculum_kwargs` (as an RL config: tasks {family:
weight}, inner, inner_kwargs, task_kwargs) the problems come from the mixture's families
(`MixtureCurriculum.draw`, fixed by (seed, step)) and each problem's demonstrations from
its own family (`tasks.task_of`); evaluation covers every family of the mixture, with
per-family keys `<family>/pass@k`, as the RL trainer's.
"""
from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.eval.evaluate import evaluate, held_out_problems
from explore_rl.models import sharding
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.tasks import Task, get_task, sample_problems, task_of
from explore_rl.tasks.curriculum import MixtureCurriculum, make_curriculum
from explore_rl.training.loop import run_loop
from explore_rl.training import batches
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.models.logprobs import response_logprobs
from explore_rl.training.state import (TrainState, apply_if_finite, init_state,
                                       optimizer_from_config)
from explore_rl.training.run_dir import prepare_run_dir
from explore_rl.training.validate import validate_config
from explore_rl.training.policy_loader import checkpoint_dir, fresh_policy


def sft_source(config) -> Task | MixtureCurriculum:
  """Where demonstrations come from: `config.task`, or with curriculum="mixture" the
  mixture of `config.curriculum_kwargs`."""
  if config.get("curriculum", "uniform") == "mixture":
    return make_curriculum("mixture", seed=config.seed, **config.get("curriculum_kwargs", {}))
  return get_task(config.task, **config.task_kwargs)


def sft_batch(source: Task | MixtureCurriculum, tokenizer, config,
              step: int) -> batches.TokenBatch:
  """One step's demonstrations: problems of stream (seed, step) from `source` (a task, or
  a mixture whose problems each get demonstrations of their own family). With
  `config.hint_rate` > 0 each one is, with that probability, replaced by
  (Task.teacher_prompt(problem), problem.solution): max_prompt_len must then hold the
  hinted prompt."""
  num_problems = config.batch_size // config.demos_per_problem
  seed = config.seed * 1_000_003 + step
  if isinstance(source, MixtureCurriculum):
    problems, default = source.draw(seed, num_problems), None
  else:
    problems, default = sample_problems(source, seed, num_problems, config.difficulty), source
  rng = np.random.default_rng([config.seed, step])
  hint_rate = float(config.get("hint_rate", 0.0))
  prompts, responses = [], []
  for p in problems:
    task = task_of(p, default)
    for demo in task.demonstrations(p, rng, config.demos_per_problem,
                                    mistake_rate=config.mistake_rate):
      if hint_rate and rng.random() < hint_rate:
        # A privileged demonstration: the hinted prompt and its solution, so the model
        # can serve as its own teacher (docs/algorithms.md, "Self-distillation").
        prompts.append(task.teacher_prompt(p))
        responses.append(p.solution)
      else:
        prompts.append(p.prompt)
        responses.append(demo)
  return batches.encode(tokenizer, prompts, responses, prompt_len=config.max_prompt_len,
                        response_len=config.max_response_len)


@functools.partial(jax.jit, static_argnames=("graphdef", "optimizer"), donate_argnums=(2,))
def sft_step(graphdef, optimizer, state: TrainState, batch: batches.TokenBatch):
  def loss_fn(params):
    logp, entropy = response_logprobs(graphdef, params, *batch)
    n = jnp.maximum(batch.response_mask.sum(), 1)
    return -logp.sum() / n, entropy.sum() / n

  (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  state, finite = apply_if_finite(state, grads, loss, optimizer)
  return state, {"loss": loss, "entropy": entropy, "update_skipped": ~finite}


def train_sft(config, workdir: str, *, progress: bool = True,
              allow_method_change: bool = False):
  """Runs (or resumes) SFT; returns (graphdef, final TrainState, last eval metrics)."""
  validate_config(config)
  task = get_task(config.task, **config.task_kwargs)
  source = sft_source(config)
  # Held-out problems: the task's, or an equal share of every family of a mixture.
  families = dict(getattr(source, "tasks_by_family", {})) or {task.family: task}
  mesh = sharding.make_mesh(dict(config.mesh))
  policy = fresh_policy(config, mesh)
  optimizer = optimizer_from_config(config.optim, config.total_steps)  # before the lock
  run_dir = prepare_run_dir(workdir, config, policy.config, write=False,
                            allow_method_change=allow_method_change)
  state = sharding.place_on_mesh(init_state(policy.params, optimizer, config.seed), mesh)
  ckpt = Checkpointer(checkpoint_dir(workdir))
  start = 0
  if ckpt.latest_step() is not None:
    state, meta = ckpt.restore(state)
    start = meta["step"]
  run_dir.write_run_files()
  data_sharding = sharding.batch_sharding(mesh, 2)
  eval_problems = {
      family: held_out_problems(t, seed=config.seed, difficulty=config.difficulty,
                                num_prompts=max(1, config.eval.num_prompts // len(families)))
      for family, t in families.items()}
  eval_sampling = SamplingConfig(temperature=config.eval.temperature,
                                 max_new_tokens=config.max_response_len)
  train = {"state": state}

  def step_fn(step: int) -> dict:
    t0 = time.perf_counter()
    batch = jax.device_put(sft_batch(source, policy.tokenizer, config, step), data_sharding)
    train["state"], metrics = sft_step(policy.graphdef, optimizer, train["state"], batch)
    metrics = to_host(metrics)
    metrics["updates_skipped"] = int(metrics.pop("update_skipped"))
    metrics["step_time"] = time.perf_counter() - t0
    metrics["tokens_per_s"] = float(batch.response_mask.sum() + batch.prompt_valid.sum()) / \
        metrics["step_time"]
    return metrics

  def eval_fn(done: int) -> dict:
    run = functools.partial(evaluate, policy.with_params(train["state"].params), task,
                            num_samples=config.eval.num_samples, sampling=eval_sampling,
                            prompt_len=config.max_prompt_len,
                            rng=jax.random.key(config.seed + done))
    out = run(sum(eval_problems.values(), []))
    if len(eval_problems) > 1:
      for family, problems in eval_problems.items():
        out.update({f"{family}/{k}": v for k, v in run(problems).items()})
    return out

  try:
    last_eval = run_loop(config, workdir, start_step=start, desc="sft", progress=progress,
                         step_fn=step_fn, eval_fn=eval_fn,
                         save_fn=lambda done: ckpt.save(done, train["state"], {"step": done}))
  finally:
    ckpt.close()
    run_dir.close()
  return policy.graphdef, train["state"], last_eval
