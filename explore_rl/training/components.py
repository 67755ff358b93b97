"""The builder: a config's components, made once before any work (names and
hyper-parameters checked, one line for a bad one).

  objective   advantage (+ reward shaper), loss terms, aggregation  (objective_builder.py)
  task, curriculum (families of a mixture)                          (tasks/)
  sampler     `rollout.sampler` with its kwargs                     (sampling/)
  judge       `judge`, strategy clusters                            (rewards/)
  optimizer   `optim`                                               (state.py)
  row_layout  the update mini-batches' packed or padded layout      (packing.py)

The RL step (training/step.py) reads them; what changes from step to step (the train
state, a teacher, the counters) belongs to the trainer.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from explore_rl.errors import ConfigError
from explore_rl.models import sharding
from explore_rl.rewards import get_judge
from explore_rl.sampling import make_sampler
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import Sampler
from explore_rl.sampling.teacher_prompts import default_teacher_prompt_len
from explore_rl.tasks import get_task
from explore_rl.tasks.base import Task
from explore_rl.tasks.curriculum import make_curriculum
from explore_rl.training import packing
from explore_rl.training.objective_builder import Objective
from explore_rl.training.state import optimizer_from_config


@dataclasses.dataclass
class Components:
  objective: Objective
  task: Task
  curriculum: Any
  families: dict          # {family: Task} of a mixture curriculum, {} for one task
  sampler: Sampler
  judge: Any
  optimizer: Any          # optax.GradientTransformation
  row_layout: packing.RowLayout
  teacher_prompt_len: int  # slots of a privileged prompt (distillation, aggregated sampling)

  @property
  def distill(self):
    """The self-distillation settings (training/distill_teacher.py), None without the term."""
    return self.objective.distill


def build_components(config, mesh, *, embed: Callable) -> Components:
  """`config`'s components on `mesh`; `embed(texts) -> [N, D]` for samplers that describe
  responses by their text (`make_sampler(embed=)`)."""
  c, r = config, config.rollout
  objective = Objective(c.objective)
  if objective.correction and c.get("trainer", "rl") == "preference":
    raise ConfigError(f"objective.is_correction={objective.correction['is_correction']!r} "
                      "weights a per-token policy loss; the preference trainer's DPO/HyPO "
                      "losses take sequence log-probs: set it to 'none'")
  task = get_task(c.task, **c.task_kwargs)
  # A mixture draws each problem's family itself; problems carry it, and each is
  # scored by its own family (`tasks.task_of`).
  kwargs = dict(c.get("curriculum_kwargs", {}))
  if c.curriculum != "mixture":
    kwargs.update(task=task, difficulty=c.difficulty)
  curriculum = make_curriculum(c.curriculum, seed=c.seed, **kwargs)
  sampling = SamplingConfig(temperature=r.temperature, top_k=r.top_k, top_p=r.top_p,
                            min_p=r.min_p, max_new_tokens=c.max_response_len)
  sampler = make_sampler(r.get("sampler", "independent"), sampling=sampling,
                         prompt_len=c.max_prompt_len, task=task, embed=embed,
                         **r.get("sampler_kwargs", {}))
  if r.old_logprobs not in ("sampler", "recompute"):
    raise ConfigError(f"rollout.old_logprobs={r.old_logprobs!r}; valid: recompute, sampler")
  devices = sharding.local_batch_divisor(mesh)
  rows = r.prompts_per_step * r.num_samples
  mb_rows = rows // c.learner.mini_batches
  if rows % c.learner.mini_batches or mb_rows % c.learner.micro_batches or \
      (mb_rows // c.learner.micro_batches) % devices:
    raise ConfigError(f"{rows} rows per step do not split into {c.learner.mini_batches} "
                      f"mini-batches x {c.learner.micro_batches} micro-batches divisible by "
                      f"the mesh's batch axes ({devices})")
  distill = objective.distill
  return Components(
      objective=objective, task=task, curriculum=curriculum,
      families=dict(getattr(curriculum, "tasks_by_family", {})), sampler=sampler,
      judge=get_judge(c.judge, **c.judge_kwargs),
      optimizer=optimizer_from_config(c.optim, c.total_steps),
      # one chunk per micro-batch and device of the batch axes (local gathers: packing.py)
      row_layout=packing.RowLayout(c.max_prompt_len, c.max_response_len,
                                   groups=c.learner.micro_batches * devices),
      teacher_prompt_len=(distill and distill.teacher_prompt_len) or
      default_teacher_prompt_len(c.max_prompt_len, c.max_response_len))
