"""The RL trainer: builds a run's components (`components.py`) and state, and runs the
shared loop (`loop.py`: steps, eval, metrics, checkpoints, signals) over the RL step
(`step.py`, which reads top to bottom: sample -> score -> judge -> context -> advantages
-> update epochs -> metrics). Held-out evaluation and checkpoints are here.
"""
from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.eval.evaluate import evaluate, held_out_problems
from explore_rl.metrics_log import read_metrics
from explore_rl.models import sharding
from explore_rl.rewards import get_judge
from explore_rl.sampling import Policies
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.training.async_rollouts import make_meshes, make_rollouts
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.training.components import Components, build_components
from explore_rl.training.distill_teacher import make_teacher
from explore_rl.training.flops import COUNTERS as FLOPS_COUNTERS
from explore_rl.training.epochs import rl_epochs
from explore_rl.training.loop import run_loop
from explore_rl.training.run_dir import prepare_run_dir
from explore_rl.training.state import init_state
from explore_rl.training.step import rl_step
from explore_rl.training.validate import validate_config
from explore_rl.training.policy_loader import checkpoint_dir, copy_tokenizer_files, initial_policy


def previous_eval_counts(workdir: str, step: int) -> dict:
  """The `*eval_num_correct` keys of the last eval row at or before `step` in metrics.jsonl
  (a resumed run's previous evaluation); {} for a fresh run."""
  if not step or not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return {}
  rows = [r for r in read_metrics(workdir, strict=False)
          if r["step"] <= step and "eval_num_correct" in r]
  return {k: v for k, v in rows[-1].items() if k.endswith("eval_num_correct")} if rows else {}


class RLTrainer:
  """Builds a run's components and state, and runs the shared loop (`loop.py`) over the RL
  step (`step.py`). `update` is the step's update component: the two-policy and preference
  trainers pass theirs (training/two_policy.py, training/preference_trainer.py)."""
  update = staticmethod(rl_epochs)

  def __init__(self, config, workdir: str, *, progress: bool = True,
               allow_method_change: bool = False):
    self.config, self.workdir, self.progress = config, workdir, progress
    c = config
    validate_config(c)                                      # before any work
    self.mesh, self.sampler_mesh = make_meshes(c.mesh)     # learner's; sampler's or None
    self.embedder = None                                    # loads on first use (`embed`)
    self.parts = build_components(c, self.mesh, embed=self.embed)
    self.policy = initial_policy(c, self.mesh)
    # Lock the workdir and check a resume against its config before writing anything.
    self.run_dir = prepare_run_dir(workdir, c, self.policy.config, write=False,
                                   allow_method_change=allow_method_change)
    if c.init_from:
      copy_tokenizer_files(c.init_from, workdir)
    params = self.policy.params
    self.state = sharding.place_on_mesh(init_state(params, self.parts.optimizer, c.seed),
                                        self.mesh)
    # The KL reference is the initial policy (also after a resume). A copy: the
    # update donates the train state's buffers.
    self.ref_params = jax.tree.map(jnp.copy, params) \
        if "ref_logprobs" in self.parts.objective.loss_spec.needs else None
    self.teacher = make_teacher(c, self.mesh, self.policy, self.parts.distill)
    ema = self.parts.distill is not None and self.parts.distill.teacher == "ema" \
        and not c.get("teacher_from")
    self.ema_ckpt = Checkpointer(os.path.join(workdir, "teacher_ema"),
                                 keep=c.get("keep_checkpoints", 3)) if ema else None
    self.eval_problems = eval_problems(c, self.parts)
    self.ckpt = Checkpointer(checkpoint_dir(workdir), keep=c.get("keep_checkpoints", 3))
    self.start_step, self.counters = 0, {"updates_skipped_total": 0,
                                         **dict.fromkeys(FLOPS_COUNTERS, 0.0)}
    if self.ckpt.latest_step() is not None:
      self.restore()
    # The last evaluation's per-prompt correct counts: learning progress (eval/diagnostics.py)
    self.previous_eval = previous_eval_counts(workdir, self.start_step)
    self.rollouts = make_rollouts(self, self.sampler_mesh)  # drawn now or ahead (max_staleness)
    self.run_dir.write_run_files()                          # the run really starts

  def restore(self):
    """The latest checkpoint's train state, loop step, counters, curriculum and layout."""
    self.state, meta = self.ckpt.restore(self.state)
    self.start_step = meta["step"]
    self.counters = {**self.counters, **meta["counters"]}  # counters added since: from 0
    self.parts.curriculum.load_state_dict(meta["curriculum"])
    if "row_layout" in meta:   # checkpoints before the layout chooser start it afresh
      self.parts.row_layout.load_state_dict(meta["row_layout"])
    if self.ema_ckpt is not None:                           # the EMA teacher of that step
      params, _ = self.ema_ckpt.restore(self.teacher.params, step=self.start_step)
      self.teacher = self.teacher.with_params(params)

  def embed(self, texts: list[str]) -> np.ndarray:
    """The embedding judge's unit vectors of `texts` [N, 384] (for the `embeddings`
    context field and samplers that describe responses by their text); loads on first use."""
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

  def step(self, step: int) -> dict:
    """One RL step (`step.rl_step`): sample, score, judge, advantages, update; its metrics."""
    return rl_step(self, step)

  def evaluate(self, done: int) -> dict:
    """Held-out metrics; for a mixture also per family (keys `<family>/pass@k`, ...)."""
    c = self.config
    run = functools.partial(evaluate, self.current_policy, self.parts.task,
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
                                      "curriculum": self.parts.curriculum.state_dict(),
                                      "row_layout": self.parts.row_layout.state_dict()})
    if self.ema_ckpt is not None:
      self.ema_ckpt.save(step, self.teacher.params, {"step": step})

  def run(self) -> dict:
    try:
      return run_loop(self.config, self.workdir, start_step=self.start_step, desc="rl",
                      progress=self.progress, step_fn=self.step, eval_fn=self.evaluate,
                      save_fn=self.save)
    finally:
      self.rollouts.close()                 # drops the rollouts drawn ahead, not trained on
      self.ckpt.close()
      if self.ema_ckpt is not None:
        self.ema_ckpt.close()
      self.run_dir.close()


def eval_problems(config, parts: Components) -> dict:
  """Held-out problems by family: the task's, or an equal share of every family of a
  mixture."""
  c = config
  tasks = parts.families or {parts.task.family: parts.task}
  return {family: held_out_problems(task, seed=c.seed, difficulty=c.difficulty,
                                    num_prompts=max(1, c.eval.num_prompts // len(tasks)))
          for family, task in tasks.items()}


def train_rl(config, workdir: str, *, progress: bool = True,
             allow_method_change: bool = False) -> dict:
  return RLTrainer(config, workdir, progress=progress,
                   allow_method_change=allow_method_change).run()
