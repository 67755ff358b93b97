"""The RL loop, top to bottom (the data path of docs/design.md).

  curriculum -> problems -> sampler draws N responses each (by name, `rollout.sampler`)
  -> verifier rewards + judge clusters -> per-group context -> reward shaping
  -> advantages [B, N] (jitted) -> PPO epochs x mini-batches of the jitted update
     (`update.rl_update`) -> metrics, eval, checkpoint   (the shared loop skeleton: `loop.py`)

The rollout crosses to the host once per step (verifiers and judges read text);
mini-batches are cut from that host copy and placed on the mesh. Determinism: every random choice
of step s comes from (seed, s), and the curriculum's position is checkpointed, so
an interrupted run resumed from its last checkpoint writes the same metrics as an
uninterrupted one.
"""
from __future__ import annotations

import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.errors import ConfigError
from explore_rl.eval.evaluate import evaluate, held_out_problems
from explore_rl.metrics_log import read_metrics
from explore_rl.models import sharding
from explore_rl.models.logprobs import score_responses
from explore_rl.objectives.context import GroupContext
from explore_rl.rewards import cluster_groups, get_judge
from explore_rl.sampling import Policies, make_sampler
from explore_rl.sampling.aggregated import default_teacher_prompt_len, encode_teacher_prompts
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import ScoredRollout, concat, sample_and_score, select_groups
from explore_rl.tasks import get_task, scoring_pool, task_of
from explore_rl.tasks.curriculum import make_curriculum
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.training.distill import distill_settings, ema_update
from explore_rl.training.loop import run_loop
from explore_rl.training import packing
from explore_rl.training.objective import Objective
from explore_rl.training.state import init_state, make_optimizer
from explore_rl.training.update import RLBatch, rl_update
from explore_rl.training.run_dir import prepare_run_dir
from explore_rl.training.validate import validate_config
from explore_rl.training.workdir import (checkpoint_dir, copy_tokenizer_files, initial_policy,
                                         load_initial_policy)


def _answer_ids(task, rollout: ScoredRollout) -> np.ndarray:
  """int32 [B, N]: per prompt, equal extracted answers share an id; unparseable -1."""
  n = rollout.num_samples
  out = np.full(rollout.rewards.shape, -1, np.int32)
  for b, problem in enumerate(rollout.problems):
    seen: dict = {}
    for j in range(n):
      answer = task_of(problem, task).extract_answer(problem, rollout.responses[b * n + j])
      if answer is not None:
        out[b, j] = seen.setdefault(answer, len(seen))
  return out


def previous_eval_counts(workdir: str, step: int) -> dict:
  """The `*eval_num_correct` keys of the last eval row at or before `step` in metrics.jsonl
  (a resumed run's previous evaluation); {} for a fresh run."""
  if not step or not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return {}
  rows = [r for r in read_metrics(workdir, strict=False)
          if r["step"] <= step and "eval_num_correct" in r]
  return {k: v for k, v in rows[-1].items() if k.endswith("eval_num_correct")} if rows else {}


def informative(rewards: np.ndarray) -> np.ndarray:
  """bool [B]: the group's rewards are not all equal (a group-relative signal exists)."""
  return rewards.max(axis=1) > rewards.min(axis=1)


def select_groups_to_train(rewards: np.ndarray, keep: np.ndarray, num_groups: int,
                           dynamic: bool) -> np.ndarray:
  """Indices of the `num_groups` groups to train on (a static count), kept ones first.

  Groups the curriculum keeps come first. With DAPO dynamic sampling (arXiv
  2503.14476) informative groups come before all others; the caller samples more
  rounds until there are enough of them (or the round cap is hit).
  """
  priority = keep.astype(int)
  if dynamic:
    priority += 2 * informative(rewards)
  return np.argsort(-priority, kind="stable")[:num_groups]


class RLTrainer:
  """Holds what a run needs; `run()` is the loop."""

  def __init__(self, config, workdir: str, *, progress: bool = True,
               allow_method_change: bool = False):
    self.config, self.workdir, self.progress = config, workdir, progress
    c = config
    validate_config(c)                                      # before any work
    self.objective = Objective(c.objective)                 # names and hyper-parameters
    self.task = get_task(c.task, **c.task_kwargs)
    # A mixture draws each problem's family itself; problems carry it, and each is
    # scored by its own family (`tasks.task_of`).
    kwargs = dict(c.get("curriculum_kwargs", {}))
    if c.curriculum != "mixture":
      kwargs.update(task=self.task, difficulty=c.difficulty)
    self.curriculum = make_curriculum(c.curriculum, seed=c.seed, **kwargs)
    self.families = dict(getattr(self.curriculum, "tasks_by_family", {}))
    self.mesh = sharding.make_mesh(dict(c.mesh))
    r = c.rollout
    self.sampling = SamplingConfig(temperature=r.temperature, top_k=r.top_k, top_p=r.top_p,
                                   min_p=r.min_p, max_new_tokens=c.max_response_len)
    self.sampler = make_sampler(r.get("sampler", "independent"), sampling=self.sampling,
                                prompt_len=c.max_prompt_len, task=self.task, embed=self._embed,
                                **r.get("sampler_kwargs", {}))
    if r.old_logprobs not in ("sampler", "recompute"):
      raise ConfigError(f"rollout.old_logprobs={r.old_logprobs!r}; valid: recompute, sampler")
    rows = r.prompts_per_step * r.num_samples
    mb_rows = rows // c.learner.mini_batches
    if rows % c.learner.mini_batches or mb_rows % c.learner.micro_batches or \
        (mb_rows // c.learner.micro_batches) % sharding.local_batch_divisor(self.mesh):
      raise ConfigError(f"{rows} rows per step do not split into {c.learner.mini_batches} "
                        f"mini-batches x {c.learner.micro_batches} micro-batches divisible by "
                        f"the mesh's batch axes ({sharding.local_batch_divisor(self.mesh)})")
    # The update mini-batches' layout: packed rows of a chosen length, or padded (`_packed`),
    # one chunk per micro-batch and device of the batch axes (local gathers: packing.py).
    self.row_layout = packing.RowLayout(
        c.max_prompt_len, c.max_response_len,
        groups=c.learner.micro_batches * sharding.local_batch_divisor(self.mesh))
    self.policy = initial_policy(c, self.mesh)
    self.judge = get_judge(c.judge, **c.judge_kwargs)      # a bad judge: before the workdir
    self.embedder = get_judge("embedding") if "embeddings" in self.objective.needs else None
    # Lock the workdir and check a resume against its config before writing anything.
    self.run_dir = prepare_run_dir(workdir, c, self.policy.config, write=False,
                                   allow_method_change=allow_method_change)
    if c.init_from:
      copy_tokenizer_files(c.init_from, workdir)
    self.optimizer = make_optimizer(**c.optim, total_steps=c.total_steps)
    params = self.policy.params
    self.state = sharding.place_on_mesh(init_state(params, self.optimizer, c.seed), self.mesh)
    # The KL reference is the initial policy (also after a resume). A copy: the
    # update donates the train state's buffers.
    self.ref_params = jax.tree.map(jnp.copy, params) if self.objective.loss_spec.kl_coef \
        else None
    # Self-distillation (training/distill.py): None when objective.distill.coef is 0. The
    # teacher (for the distillation term and for samplers that aggregate with one) is a
    # separate checkpoint (`teacher_from`), a frozen copy or EMA of the initial params, or
    # None: the live policy.
    self.distill = distill_settings(c.objective.get("distill"))
    self.teacher = None
    if c.get("teacher_from"):
      if self.distill is not None and self.distill.teacher != "initial":
        raise ConfigError(f"teacher_from={c.teacher_from!r} is a frozen teacher; "
                          f"objective.distill.teacher={self.distill.teacher!r} needs it empty")
      self.teacher = load_initial_policy(c.teacher_from, self.mesh, c.get("hf"))
      if self.teacher.config.vocab_size != self.policy.config.vocab_size:
        raise ConfigError(f"teacher_from={c.teacher_from!r} has a vocabulary of "
                          f"{self.teacher.config.vocab_size}, the student "
                          f"{self.policy.config.vocab_size}: they must share the tokenizer")
    elif self.distill is not None and self.distill.teacher in ("initial", "ema"):
      self.teacher = self.policy.with_params(jax.tree.map(jnp.copy, params))
    self.teacher_prompt_len = (self.distill and self.distill.teacher_prompt_len) or \
        default_teacher_prompt_len(c.max_prompt_len, c.max_response_len)
    ema = self.distill is not None and self.distill.teacher == "ema" and not c.get("teacher_from")
    self.ema_ckpt = Checkpointer(os.path.join(workdir, "teacher_ema"),
                                 keep=c.get("keep_checkpoints", 3)) if ema else None
    # Held-out problems: the task's, or an equal share of every family of a mixture.
    eval_tasks = self.families or {self.task.family: self.task}
    self.eval_problems = {
        family: held_out_problems(task, seed=c.seed, difficulty=c.difficulty,
                                  num_prompts=max(1, c.eval.num_prompts // len(eval_tasks)))
        for family, task in eval_tasks.items()}
    self.ckpt = Checkpointer(checkpoint_dir(workdir), keep=c.get("keep_checkpoints", 3))
    self.start_step, self.counters = 0, {"updates_skipped_total": 0, "flops_sample": 0.0,
                                         "flops_train": 0.0}
    if self.ckpt.latest_step() is not None:
      self.state, meta = self.ckpt.restore(self.state)
      self.start_step = meta["step"]
      self.counters = meta["counters"]
      self.curriculum.load_state_dict(meta["curriculum"])
      if "row_layout" in meta:   # checkpoints before the layout chooser start it afresh
        self.row_layout.load_state_dict(meta["row_layout"])
      if self.ema_ckpt is not None:                         # the EMA teacher of that step
        params, _ = self.ema_ckpt.restore(self.teacher.params, step=self.start_step)
        self.teacher = self.teacher.with_params(params)
    # The last evaluation's per-prompt correct counts: learning progress (eval/diagnostics.py)
    self.previous_eval = previous_eval_counts(workdir, self.start_step)
    self.run_dir.write_run_files()                          # the run really starts

  def _embed(self, texts: list[str]) -> np.ndarray:
    """The embedding judge's unit vectors of `texts` [N, 384] (samplers that describe responses
    by their text, `make_sampler(embed=)`); the judge loads on first use."""
    if self.embedder is None:
      self.embedder = get_judge("embedding")
    return self.embedder.embed(texts)

  @property
  def current_policy(self):
    return self.policy.with_params(self.state.params)

  def policies(self) -> Policies:
    """What the sampler gets: the trained policy (and a teacher). Two-policy training
    (training/two_policy.py) adds its explore policy as the behaviour policy."""
    return Policies(self.current_policy, teacher=self.teacher)

  # -- one step ------------------------------------------------------------------------------
  def _rollout(self, step: int, rng) -> tuple[ScoredRollout, dict]:
    """The step's trained groups. With dynamic sampling, rounds of oversampled prompts
    are drawn until `prompts_per_step` informative groups exist (at most
    `objective.max_sampling_rounds` rounds), as DAPO does."""
    c, obj = self.config, self.objective
    num_groups = c.rollout.prompts_per_step
    per_round = int(np.ceil(num_groups * c.objective.get("oversample", 1.0))) \
        if obj.dynamic_sampling else num_groups
    rounds, keeps = [], []
    while True:
      problems = self.curriculum.next_batch(per_round)
      policies = self.policies()
      scored = sample_and_score(self.sampler, policies, self.task,
                                problems, num_samples=c.rollout.num_samples,
                                rng=jax.random.fold_in(rng, len(rounds)))
      keeps.append(np.asarray(self.curriculum.update(problems,
                                                     scored.correct.mean(axis=1).tolist())))
      rounds.append(scored)
      enough = sum(int(informative(s.rewards).sum()) for s in rounds) >= num_groups
      if not obj.dynamic_sampling or enough or len(rounds) >= obj.max_sampling_rounds:
        break
    scored = concat(rounds)
    groups = select_groups_to_train(scored.rewards, np.concatenate(keeps), num_groups,
                                    obj.dynamic_sampling)
    sampled_tokens = float(scored.host.mask.sum() + scored.host.prompt_valid.sum()
                           * scored.num_samples)
    trained = select_groups(scored, groups)
    return trained, {"groups_informative": float(informative(trained.rewards).mean()),
                     "sampling_rounds": len(rounds), "_sampled_tokens": sampled_tokens,
                     **self.sampler.metrics()}

  def _advantages(self, scored: ScoredRollout, rng,
                  objective: Objective | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(shaped rewards, advantages [B, N], metrics) of `objective` (default: the run's)."""
    objective = objective or self.objective
    n = scored.num_samples
    b = len(scored.problems)
    needs = objective.needs
    metrics, context = {}, {}
    if "cluster_ids" in needs or self.config.log_clusters:
      prompts = [p.prompt for p in scored.problems]
      groups = [scored.responses[i * n:(i + 1) * n] for i in range(b)]
      cluster_ids = cluster_groups(self.judge, prompts, groups, scored.signatures)
      metrics["distinct_clusters"] = float(np.mean(
          [len(set(row[row >= 0].tolist())) for row in cluster_ids]))
      metrics.update({f"judge_{k}": v for k, v in self.judge.metrics().items()})
      context["cluster_ids"] = cluster_ids
    if "embeddings" in needs:
      context["embeddings"] = self.embedder.embed(scored.responses).reshape(b, n, -1)
    if "answer_ids" in needs:
      context["answer_ids"] = _answer_ids(self.task, scored)
    ctx = GroupContext(rewards=scored.rewards, mask=np.ones((b, n), bool),
                       lengths=scored.host.lengths.reshape(b, n), rng=rng, **context)
    shaped, adv = to_host(objective(ctx))
    return np.asarray(shaped), np.asarray(adv), metrics

  def _update(self, scored: ScoredRollout, adv: np.ndarray, step: int, rng) -> dict:
    c = self.config
    ro, n = scored.host, scored.num_samples   # mini-batches are cut from the host copy
    rep = lambda x: np.repeat(x, n, axis=0)
    old = ro.policy_logprobs
    if c.rollout.old_logprobs == "recompute":
      dev = scored.batch
      old = score_responses(self.policy.graphdef, self.state.params,
                            jnp.repeat(dev.prompt_tokens, n, axis=0),
                            jnp.repeat(dev.prompt_valid, n, axis=0), dev.tokens, dev.mask,
                            temperature=float(c.rollout.temperature))[0]
    teacher_prompt = (None, None)
    if self.distill is not None and self.distill.privileged:
      teacher_prompt = tuple(map(rep, encode_teacher_prompts(
          self.policy.tokenizer, scored.problems, self.teacher_prompt_len, self.task)))
    full = RLBatch(rep(ro.prompt_tokens), rep(ro.prompt_valid), ro.tokens, ro.mask, old,
                   ro.behaviour_logprobs, adv.reshape(-1).astype(np.float32), *teacher_prompt)

    def update(mb: RLBatch, key) -> dict:
      self.state, metrics = rl_update(
          self.policy.graphdef, self.optimizer, self.objective.loss_spec, self.state,
          self.ref_params, mb, key, micro_batches=c.learner.micro_batches,
          temperature=float(c.rollout.temperature), **self._distill_args())
      if self.ema_ckpt is not None:
        self.teacher = self.teacher.with_params(ema_update(
            self.teacher.params, self.state.params, self.distill.ema_decay))
      return metrics

    out = self._minibatches(full, step, rng, update,
                            pack=self.distill is None and c.learner.get("pack", True))
    tokens = float(scored.host.mask.sum() + scored.host.prompt_valid.sum() * n)
    out["_train_tokens"] = tokens * c.learner.epochs
    return out

  def _packed(self, mb: RLBatch) -> RLBatch:
    """`mb` (host arrays) with its rows packed (training/packing.py), micro-batch by
    micro-batch, in the layout `self.row_layout` chooses; `mb` as it is where that is the
    padded one."""
    packed = self.row_layout(mb.prompt_tokens, mb.prompt_valid, mb.response_tokens,
                             mb.response_mask)
    if packed is None:
      return mb
    return mb._replace(**{f"packed_{k}": v for k, v in packed._asdict().items()})

  def _on_mesh(self, batch: RLBatch) -> RLBatch:
    """`batch`'s arrays on the mesh, rows over its batch axes."""
    return jax.tree.map(
        lambda x: jax.device_put(x, sharding.batch_sharding(self.mesh, np.ndim(x))), batch)

  def _minibatches(self, full: RLBatch, step: int, rng, update, *, pack: bool = False) -> dict:
    """`update(mini-batch, key) -> metrics` over learner.epochs passes of `full` in
    learner.mini_batches shuffled mini-batches (order from (seed, step)), each cut on the
    host, packed when `pack` (`_packed`) and placed on the mesh; returns the mean metrics
    and the number of skipped updates.

    Cutting on the host: the leaves of `full` still on the device (a recomputed π_old) come
    over once; an eager device gather per array and mini-batch cost a dispatch each, a third
    of the update's time at 32 rows per step (benchmarks/README.md)."""
    c = self.config
    perm_rng = np.random.default_rng([c.seed, step, 1])
    full = to_host(full)
    collected = []
    for epoch in range(c.learner.epochs):
      order = perm_rng.permutation(full.advantages.shape[0])
      for i, idx in enumerate(np.array_split(order, c.learner.mini_batches)):
        mb = jax.tree.map(lambda x: x[idx], full)
        mb = self._on_mesh(self._packed(mb) if pack else mb)
        collected.append(update(mb, jax.random.fold_in(rng, epoch * c.learner.mini_batches + i)))
    metrics = to_host(collected)
    out = {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}
    out["updates_skipped"] = int(sum(bool(m["update_skipped"]) for m in metrics))
    out.pop("update_skipped")
    return out

  def _distill_args(self) -> dict:
    """rl_update's distillation arguments; none without a distillation term (the plain update)."""
    if self.distill is None:
      return {}
    live = self.distill.teacher == "live" and self.teacher is None
    graphdef = None if live or self.teacher.graphdef is self.policy.graphdef \
        else self.teacher.graphdef
    return dict(distill=self.distill.spec, teacher_params=None if live else self.teacher.params,
                teacher_graphdef=graphdef)

  def step(self, step: int) -> dict:
    """One RL step: rollout, advantages, update; returns the step's metrics."""
    rng = jax.random.fold_in(jax.random.key(self.config.seed), step)
    k_sample, k_adv, k_update = jax.random.split(rng, 3)
    pool_before = scoring_pool().metrics()
    t0 = time.perf_counter()
    scored, metrics = self._rollout(step, k_sample)
    t1 = time.perf_counter()
    shaped, adv, adv_metrics = self._advantages(scored, k_adv)
    t2 = time.perf_counter()
    upd = self._update(scored, adv, step, k_update)
    t3 = time.perf_counter()

    metrics.update(self._sandbox_metrics(pool_before, scoring_pool().metrics()))
    n_params = self.policy.config.num_params()
    sampled_tokens = metrics.pop("_sampled_tokens")
    self.counters["flops_sample"] += 2.0 * n_params * sampled_tokens
    self.counters["flops_train"] += 6.0 * n_params * upd.pop("_train_tokens")
    self.counters["updates_skipped_total"] += upd["updates_skipped"]
    host = scored.host
    mask = host.mask
    metrics.update(adv_metrics)
    metrics.update({
        "reward_mean": float(scored.rewards.mean()), "reward_std": float(scored.rewards.std()),
        "shaped_reward_mean": float(shaped.mean()),
        "train_pass@1": float(scored.correct.mean()),
        "train_distinct_strategies": float(scored.distinct_successful_strategies().mean()),
        "rollout_entropy": float((host.entropy * mask).sum() / max(mask.sum(), 1)),
        "response_len": float(mask.sum(1).mean()),
        "truncated_frac": float(host.truncated.mean()),
        "advantage_abs_mean": float(np.abs(adv).mean()),
        "time_sample": t1 - t0, "time_score": t2 - t1, "time_update": t3 - t2,
        "step_time": t3 - t0, "tokens_per_s": sampled_tokens / (t3 - t0),
        **upd, **self.counters, **{f"world_{k}": v for k, v in self.curriculum.stats().items()},
    })
    if self.families:                  # a mixture: what each family got and how it went
      family = np.asarray([p.family for p in scored.problems])
      for name in self.families:
        rows = family == name
        metrics[f"{name}/train_groups"] = int(rows.sum())
        if rows.any():
          metrics[f"{name}/train_pass@1"] = float(scored.correct[rows].mean())
    return metrics

  def _sandbox_metrics(self, before: dict, after: dict) -> dict:
    """The shared scoring pool's counts over this step's rollout (`sandbox_calls`, `_ok`,
    `_timeout`, `_error`, `_server_starts`, `_seconds_mean`, isolation flags) and the run's
    totals (`sandbox_{calls,timeout,error}_total`, checkpointed with the counters); {}
    while the run has not scored in the pool (families without third-party scorers)."""
    calls = after["sandbox_calls"] - before["sandbox_calls"]
    if not calls and "sandbox_calls_total" not in self.counters:
      return {}
    out = {f"sandbox_{k}": after[f"sandbox_{k}"] - before[f"sandbox_{k}"]
           for k in ("calls", "ok", "timeout", "error", "server_starts")}
    seconds = (after["sandbox_seconds_mean"] * after["sandbox_calls"]
               - before["sandbox_seconds_mean"] * before["sandbox_calls"])
    out["sandbox_seconds_mean"] = seconds / max(calls, 1)
    out.update({k: float(v) for k, v in after.items() if k.startswith("sandbox_isolated_")})
    for k in ("calls", "timeout", "error"):
      self.counters[f"sandbox_{k}_total"] = self.counters.get(f"sandbox_{k}_total", 0) + \
          out[f"sandbox_{k}"]
    return out

  def evaluate(self, done: int) -> dict:
    """Held-out metrics; for a mixture also per family (keys `<family>/pass@k`, ...)."""
    c = self.config
    run = functools.partial(evaluate, self.current_policy, self.task,
                            num_samples=c.eval.num_samples,
                            sampling=SamplingConfig(temperature=c.eval.temperature,
                                                    max_new_tokens=c.max_response_len),
                            prompt_len=c.max_prompt_len, rng=jax.random.key(c.seed + 1))
    prev = self.previous_eval
    out = run(sum(self.eval_problems.values(), []),
              previous_num_correct=prev.get("eval_num_correct"))
    if len(self.eval_problems) > 1:
      for family, problems in self.eval_problems.items():
        out.update({f"{family}/{k}": v for k, v in run(
            problems, previous_num_correct=prev.get(f"{family}/eval_num_correct")).items()})
    self.previous_eval = out
    return out

  def save(self, step: int):
    self.ckpt.save(step, self.state, {"step": step, "counters": self.counters,
                                      "curriculum": self.curriculum.state_dict(),
                                      "row_layout": self.row_layout.state_dict()})
    if self.ema_ckpt is not None:
      self.ema_ckpt.save(step, self.teacher.params, {"step": step})

  def run(self) -> dict:
    try:
      return run_loop(self.config, self.workdir, start_step=self.start_step, desc="rl",
                      progress=self.progress, step_fn=self.step, eval_fn=self.evaluate,
                      save_fn=self.save)
    finally:
      self.ckpt.close()
      if self.ema_ckpt is not None:
        self.ema_ckpt.close()
      self.run_dir.close()


def train_rl(config, workdir: str, *, progress: bool = True,
             allow_method_change: bool = False) -> dict:
  return RLTrainer(config, workdir, progress=progress,
                   allow_method_change=allow_method_change).run()
