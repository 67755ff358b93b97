"""The base model's pass@k map: a pretrained model measured with no training on candidate
tasks, and the rule that picks the tasks worth training on.

A task is a `TaskSpec` (family, its kwargs, a difficulty, and a `kind` that says which
tasks are alike). `measure` evaluates a policy on `num_prompts` held-out problems of a
spec with `num_samples` samples each at temperature 1 (`evaluate.evaluate`: the unbiased
pass@k of Chen et al. 2021, arXiv 2107.03374, distinct correct strategies and answers,
mean token entropy, mean response length). A chat model gets each problem as a chat
message (`tasks/chat.py`).

`choose` applies the selection rule for RL training tasks:

  eligible:  PASS1_RANGE[0] <= pass@1 <= PASS1_RANGE[1]   (a group-relative signal)
             pass@k_max - pass@1 >= MIN_HEADROOM        (room for RL and exploration)
  chosen:    the eligible task with the largest headroom, then the one with the largest
             headroom among those of another `kind`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Mapping

import jax

from explore_rl.eval.evaluate import evaluate, held_out_problems
from explore_rl.models.policy import Policy
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import chat_problems
from explore_rl.tasks import get_task

PASS1_RANGE = (0.05, 0.6)
MIN_HEADROOM = 0.15
# The keys of `evaluate`'s output a map entry keeps (pass@k for every k it measured too).
KEPT = ("distinct_strategies", "distinct_correct_answers", "distinct_correct_strategies",
        "eval_entropy", "eval_response_len", "eval_truncated_frac", "eval_malformed_frac",
        "coverage", "eval_num_correct")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """A candidate training task: `task` (a TASKS spec) with `task_kwargs` at `difficulty`."""
  key: str
  task: str
  difficulty: float
  kind: str
  task_kwargs: Mapping = dataclasses.field(default_factory=dict)

  def build(self):
    return get_task(self.task, **dict(self.task_kwargs))

  def to_json(self) -> dict:
    return {"key": self.key, "task": self.task, "difficulty": self.difficulty,
            "kind": self.kind, "task_kwargs": dict(self.task_kwargs)}


# reasoning-gym datasets whose answers are numbers: a reply is read by its last number when
# it states no final answer, as the project's arithmetic is (tasks/reasoning_gym.py,
# `numeric_answers`), so every family of numbers is measured under the same reading.
NUMERIC_DATASETS = ("basic_arithmetic", "chain_sum", "leg_counting", "simple_equations",
                    "letter_counting", "gsm_symbolic")


def _rg(dataset: str, difficulty: float, kind: str, name: str = "", **config) -> TaskSpec:
  """reasoning-gym's `dataset` at its curriculum's `difficulty`, `config` fields on top."""
  kwargs = {"dataset": dataset, **({"numeric_answers": True} if dataset in NUMERIC_DATASETS
                                   else {}), **({"config": config} if config else {})}
  return TaskSpec(f"rg-{dataset}-{name or f'd{difficulty:g}'}", "reasoning_gym", difficulty,
                  kind, kwargs)


# number_sorting's curriculum starts at 10-50 decimals (800+ prompt tokens): 3-5 and 6-10
# integers in [-99, 99] instead.
_SORT = dict(min_decimals=0, max_decimals=0, min_value=-99, max_value=99)


# The project's own families (chat-shaped) and reasoning-gym's, 2-3 difficulties each where
# the difficulty changes the problems (gsm_symbolic has no curriculum, and simple_equations
# above level 0 has 20-digit constants: one entry each).
CANDIDATES: tuple[TaskSpec, ...] = (
    TaskSpec("arithmetic-d0", "arithmetic", 0.0, "arithmetic"),
    TaskSpec("arithmetic-d0.3", "arithmetic", 0.3, "arithmetic"),
    TaskSpec("arithmetic-d0.5", "arithmetic", 0.5, "arithmetic"),
    TaskSpec("countdown-d0", "countdown", 0.0, "search"),
    TaskSpec("countdown-d0.3", "countdown", 0.3, "search"),
    TaskSpec("partition-d0", "partition", 0.0, "combinatorial"),
    TaskSpec("partition-d0.5", "partition", 0.5, "combinatorial"),
    TaskSpec("grid_paths-d0", "grid_paths", 0.0, "combinatorial"),
    TaskSpec("grid_paths-d0.5", "grid_paths", 0.5, "combinatorial"),
    _rg("basic_arithmetic", 0.0, "arithmetic"), _rg("basic_arithmetic", 0.5, "arithmetic"),
    _rg("chain_sum", 0.0, "arithmetic"), _rg("chain_sum", 0.5, "arithmetic"),
    _rg("leg_counting", 0.0, "word problem"), _rg("leg_counting", 0.5, "word problem"),
    _rg("simple_equations", 0.0, "algebra"),
    _rg("letter_counting", 0.0, "string"), _rg("letter_counting", 0.5, "string"),
    _rg("number_sorting", 0.0, "sorting", "n3-5", min_numbers=3, max_numbers=5, **_SORT),
    _rg("number_sorting", 0.0, "sorting", "n6-10", min_numbers=6, max_numbers=10, **_SORT),
    _rg("spell_backward", 0.0, "string"), _rg("spell_backward", 0.5, "string"),
    _rg("countdown", 0.0, "search"),
    _rg("gsm_symbolic", 0.0, "word problem"),
    _rg("family_relationships", 0.0, "relations"),
)
BY_KEY = {spec.key: spec for spec in CANDIDATES}


def get_spec(key: str) -> TaskSpec:
  if key not in BY_KEY:
    raise ValueError(f"unknown task {key!r}; valid: {', '.join(BY_KEY)}")
  return BY_KEY[key]


def prompt_len(policy: Policy, task, problems) -> int:
  """The longest prompt of `problems` in the policy's prompt shape (its chat template),
  in tokens, rounded up to a multiple of 16."""
  tok = policy.tokenizer
  longest = max(len(tok.encode(p.prompt, bos=True))
                for p in chat_problems(tok, task, problems))
  return 16 * math.ceil(longest / 16)


def measure(policy: Policy, spec: TaskSpec, *, num_prompts: int, num_samples: int,
            max_new_tokens: int, seed: int = 0, chunk: int = 4) -> dict:
  """The map entry of `policy` on `spec`: pass@k for k = 1, 2, 4, ..., num_samples (and its
  standard error over prompts), the `KEPT` metrics, the prompt length and the wall time.
  `chunk` prompts are sampled at once (chunk x num_samples rows of KV cache)."""
  t0 = time.perf_counter()
  task = spec.build()
  problems = held_out_problems(task, seed=seed, num_prompts=num_prompts,
                               difficulty=spec.difficulty)
  length = prompt_len(policy, task, problems)
  out = evaluate(policy, task, problems, num_samples=num_samples,
                 sampling=SamplingConfig(temperature=1.0, max_new_tokens=max_new_tokens),
                 prompt_len=length, rng=jax.random.key(seed), chunk=chunk)
  row = {k: v for k, v in out.items() if k.startswith("pass@") or k in KEPT}
  return {**row, "prompt_len": length, "wall_s": time.perf_counter() - t0}


def headroom(entry: Mapping) -> float:
  """pass@k_max − pass@1 of a map entry (k_max: the largest k it measured)."""
  k_max = max(int(k[5:]) for k in entry if k.startswith("pass@") and "_" not in k)
  return entry[f"pass@{k_max}"] - entry["pass@1"]


def eligible(entry: Mapping) -> bool:
  low, high = PASS1_RANGE
  return low <= entry["pass@1"] <= high and headroom(entry) >= MIN_HEADROOM


def choose(done: Mapping[str, Mapping]) -> list[str]:
  """The chosen training tasks (module docstring) among `done`, {key: the task's result
  summary, with its map entry under "metrics" and its spec under "spec"}: up to two keys,
  the second of another kind than the first."""
  entries = {k: s["metrics"] for k, s in done.items()}
  ranked = sorted((k for k, e in entries.items() if eligible(e)),
                  key=lambda k: (-headroom(entries[k]), k))
  first_kind = done[ranked[0]]["spec"]["kind"] if ranked else None
  other = [k for k in ranked if done[k]["spec"]["kind"] != first_kind]
  return ranked[:1] + other[:1]
