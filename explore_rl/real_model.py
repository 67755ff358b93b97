"""The arms of the real-model experiment and `make demo-real`: each method's SmolLM2 config
(training/smollm2_config.py) on a task of the base model's map (eval/base_map.py), at
one of three scales, and the base model's own evaluation as the control.

Arms (each trained from the pretrained model itself, no SFT stage; the same prompts per
step x samples x steps, i.e. the same sample budget, at a scale):
  base          the untrained model (the control): evaluated only
  grpo          GRPO (arXiv 2402.03300), configs/smollm2_grpo.py
  polyepo       Poly-EPO (arXiv 2604.17654), configs/smollm2_polyepo.py; the signature judge
                where the task's chat answer carries its strategy (`STRATEGY_FAMILIES`),
                else the MiniLM embedding judge
  clip_cov      Clip-Cov (arXiv 2505.22617), configs/smollm2_clip_cov.py
  pkpo          PKPO (arXiv 2505.15201) with k = 8 (configs/pkpo.py's objective)
  self_distill  privileged self-distillation with logit aggregation (product of experts,
                configs/self_distill.py): the initial model shown the task's reference
                solution (`Problem.solution`, which every family fills) is the teacher

Scales (`SCALES`): quick (the test suite: 2 steps of 2 x 2 x 16 tokens), demo
(`make demo-real`), cpu (the experiment as it fits one session on 2 CPU cores: 10 steps,
bf16 matmuls, a 32 x 16 final evaluation), full (40 steps, 64 x 64) and gpu (the same on
one GPU: 200 steps of 16 x 8 x 256; not run yet); full fine-tuning at every scale.
"""
from __future__ import annotations

import math
import os
from typing import Mapping

import ml_collections

from explore_rl import summaries
from explore_rl.config_files import load_config
from explore_rl.eval.base_map import TaskSpec, choose
from explore_rl.training.smollm2_config import smollm2_config

MODEL = "smollm2-135m-instruct"
# The task before the base map has chosen one: the SmolLM2 configs' (pass@1 0.125 there).
FALLBACK_TASK = "arithmetic-d0"
ARMS = ("base", "grpo", "polyepo", "clip_cov", "pkpo", "self_distill")
LABELS = {"base": "base model", "grpo": "GRPO", "polyepo": "Poly-EPO", "clip_cov": "Clip-Cov",
          "pkpo": "PKPO (k=8)", "self_distill": "self-distillation (PoE)"}
# Families whose chat answer is the strategy itself (an expression, a multiset, a path):
# their signature judge clusters strategies. Elsewhere the answer alone is parsed (one
# correct answer per problem), so strategies are clustered by the embedding judge.
STRATEGY_FAMILIES = ("countdown", "partition", "grid_paths")
SCALES = {
    # The suite's smoke run: the real model, 2 steps, a tiny evaluation.
    "quick": dict(total_steps=2, eval_every=2, prompts=2, samples=2, response=16, micro=1,
                  eval_prompts=2, eval_samples=2, lr=1e-6, final_prompts=4, final_samples=4),
    # make demo-real: <= 30 minutes on 2 cores for two arms. The cpu scale's step and
    # learning rate for 6 steps: there GRPO's pass@1 rose 0.12 -> 0.39 by step 5, and its
    # replies shrank from ~70 tokens to ~15 (with 4 x 4 x 64 tokens at lr 1e-5 neither
    # method moved the model). Measured: 15 min 40 s end to end, pass@1 0.06 -> 0.48 / 0.50.
    "demo": dict(total_steps=6, eval_every=3, prompts=8, samples=8, response=128, micro=4,
                 eval_prompts=8, eval_samples=8, lr=2e-5, final_prompts=8, final_samples=8,
                 matmul="bfloat16"),
    # The experiment as one 3-hour session on 2 cores runs it (base, GRPO and Poly-EPO x 3
    # seeds took 96 minutes): 10 steps of 8 prompts x 8 samples x 128 tokens (640 samples a
    # run), bf16 matmul inputs (fp32 weights, optimiser and accumulation; a step 86 -> 53 s
    # on SmolLM2, and results/mixed_precision finds no change in what GRPO learns), a
    # learning rate raised for 10 steps (not tuned), final evaluation 32 x 16 (pass@16).
    "cpu": dict(total_steps=10, eval_every=5, prompts=8, samples=8, response=128, micro=4,
                eval_prompts=16, eval_samples=8, lr=2e-5, final_prompts=32,
                final_samples=16, matmul="bfloat16"),
    # The experiment: 40 steps of 8 prompts x 8 samples x 128 tokens (2560 samples a run);
    # the learning rate chosen for 40 steps of full fine-tuning, not tuned.
    "full": dict(total_steps=40, eval_every=10, prompts=8, samples=8, response=128, micro=4,
                 eval_prompts=32, eval_samples=8, lr=5e-6, final_prompts=64,
                 final_samples=64),
    # The same experiment on one GPU: longer training and 256-token responses.
    "gpu": dict(total_steps=200, eval_every=25, prompts=16, samples=8, response=256, micro=1,
                eval_prompts=64, eval_samples=8, lr=2e-6, final_prompts=64,
                final_samples=64),
}


def counts_strategies(task: str) -> bool:
  """Whether distinct correct signatures of task family `task` are distinct strategies:
  its chat answer is the strategy itself (`STRATEGY_FAMILIES`). Elsewhere a signature is
  the normalised final answer, so distinct correct signatures are spellings of the one
  correct answer ("275", "275.0"), and a claim about strategies cannot be decided there."""
  return task in STRATEGY_FAMILIES


def judge_of(spec: TaskSpec) -> str:
  return "signature" if counts_strategies(spec.task) else "embedding"


def method_config(arm: str) -> ml_collections.ConfigDict:
  """The arm's SmolLM2 config (before the task and scale)."""
  if arm in ("grpo", "polyepo", "clip_cov"):
    return load_config(f"smollm2_{arm}")
  c = smollm2_config(arm)
  if arm == "pkpo":
    c.objective.advantage_kwargs.k = 8
  return c


def arm_config(arm: str, spec: TaskSpec, *, seed: int, scale: str, prompt_len: int,
               init_from: str = MODEL) -> ml_collections.ConfigDict:
  """The config of one training run: `arm` on `spec` at `scale` with `seed`; prompts fit
  in `prompt_len` tokens (`base_map.prompt_len` of the task's problems, with a margin)."""
  s = SCALES[scale]
  c = method_config(arm)
  c.init_from, c.seed = init_from, seed
  c.task, c.difficulty = spec.task, spec.difficulty
  c.task_kwargs = ml_collections.ConfigDict(dict(spec.task_kwargs))
  c.max_prompt_len, c.max_response_len = prompt_len, s["response"]
  c.total_steps, c.eval_every = s["total_steps"], s["eval_every"]
  c.checkpoint_every = s["total_steps"]
  c.rollout.prompts_per_step, c.rollout.num_samples = s["prompts"], s["samples"]
  c.learner.micro_batches = s["micro"]
  c.optim.learning_rate = s["lr"]
  c.eval.num_prompts, c.eval.num_samples = s["eval_prompts"], s["eval_samples"]
  if s.get("matmul"):
    c.model_overrides.matmul_dtype = s["matmul"]
  if arm == "polyepo":
    c.judge = judge_of(spec)
    c.objective.advantage_kwargs.set_size = min(4, s["samples"])
  if arm == "pkpo":
    c.objective.advantage_kwargs.k = min(8, s["samples"])
  if "norm" in c.objective.aggregation_kwargs:   # a length normaliser: the response budget
    c.objective.aggregation_kwargs.norm = s["response"]
  return c


def base_policy(config, loaded):
  """The base model `loaded` (`load_initial_policy(config.init_from)`) as `config`'s runs
  compute (its `model_overrides`' compute dtype): the control the trained arms are paired
  with. Shares `loaded`'s parameters."""
  from explore_rl.training.policy_loader import adapt_policy
  return adapt_policy(loaded, config)


def task_prompt_len(policy, spec: TaskSpec, *, seed: int, margin: int = 32,
                    num_problems: int = 256) -> int:
  """A max_prompt_len for training on `spec`: the longest of its first `num_problems`
  training and held-out problems in the policy's prompt shape, plus `margin` tokens for
  later problems, a multiple of 16."""
  from explore_rl.eval.base_map import prompt_len
  from explore_rl.eval.evaluate import held_out_problems
  from explore_rl.tasks.registry import sample_problems
  task = spec.build()
  problems = sample_problems(task, seed, num_problems, spec.difficulty) + held_out_problems(
      task, seed=seed, num_prompts=num_problems, difficulty=spec.difficulty)
  return 16 * math.ceil((prompt_len(policy, task, problems) + margin) / 16)


def final_eval_size(scale: str) -> Mapping[str, int]:
  """{num_prompts, num_samples} of every run's final held-out evaluation at `scale`."""
  s = SCALES[scale]
  return {"num_prompts": s["final_prompts"], "num_samples": s["final_samples"]}


def map_choice(base_dir: str) -> list[str]:
  """The training tasks the base map in `base_dir` chose (experiments/base_model.py)."""
  return choose(summaries.read_all(os.path.join(base_dir, "tasks")))


def chosen_tasks(base_dir: str) -> list[str]:
  """`map_choice(base_dir)`, else [FALLBACK_TASK], announced."""
  picks = map_choice(base_dir)
  if not picks:
    print(f"no task chosen in {base_dir} yet (experiments/base_model.py): using "
          f"{FALLBACK_TASK}, the SmolLM2 configs' task", flush=True)
  return picks or [FALLBACK_TASK]
