"""World sampling: curricula that choose which problems to train on.

See docs/algorithms.md, "World and path sampling".

Every curriculum serves `next_batch(num) -> list[Problem]`, takes feedback with
`update(problems, pass_rates) -> keep[num]` (a boolean mask: the problems worth
training on), counts the problems it generated and evaluated (world-sampling
cost, to set against path-sampling cost), and saves / restores its position with
JSON-serialisable `state_dict()` / `load_state_dict()`: problem n of a stream is
drawn from `problem_rng(seed, n)`, so a resumed run sees the same data stream.

- `uniform`:  a fixed difficulty.
- `adaptive`: difficulty-adaptive. The mean pass rate of the last `window`
  evaluated problems is kept inside `band` = [lo, hi] by stepping the difficulty
  up (mean > hi) or down (mean < lo); after a step the window restarts. Problems
  whose own pass rate is outside the band carry no group-relative signal and are
  dropped (keep = False), as in DAPO's dynamic sampling (arXiv 2503.14476).
- `mixture`:  several families with weights, each served by its own inner curriculum.
  Its keys are family specs ("countdown", "reasoning_gym:countdown"); every problem it
  serves carries its key as `Problem.family`, and `explore_rl.tasks.task_of` returns
  the mixture's own task instance for it. A family of weight 0 is never drawn but is
  still evaluated (a held-out family). `weighting="learnability"` adapts the family
  weights to the feedback: family f is drawn with probability proportional to
  w_f * (p_f (1 - p_f) + floor), p_f an exponential moving average of its problems' pass
  rates (0.5 before any feedback), mixed with `explore` of the fixed weights. p (1 - p) is
  the variance of a Bernoulli reward, the group-relative signal a family offers:
  families at intermediate pass rates are where the policy learns (the "learnability"
  of Foster & Foerster, arXiv 2502.12272; docs/algorithms.md, "World and path sampling").
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Mapping, Sequence

import numpy as np

from explore_rl.registry import Registry
from explore_rl.tasks.base import Problem, Task
from explore_rl.tasks.registry import get_task, problem_rng, register_family

CURRICULA = Registry("curriculum")
_MAX_OWNED = 10_000  # recently served prompts a mixture remembers, to route feedback


def make_curriculum(name: str, **kwargs) -> "Curriculum":
  return CURRICULA.build(name, **kwargs)


class Curriculum(abc.ABC):
  """Counters and state shared by every curriculum."""

  def __init__(self, *, seed: int):
    self.seed = int(seed)
    self.num_generated = 0
    self.num_evaluated = 0
    self.num_dropped = 0

  @abc.abstractmethod
  def next_batch(self, num: int) -> list[Problem]:
    """The next `num` problems of the stream."""

  def update(self, problems: Sequence[Problem], pass_rates: Sequence[float]) -> np.ndarray:
    """Record evaluated problems; returns keep[len(problems)] (all True here)."""
    rates = self._check(problems, pass_rates)
    self.num_evaluated += len(rates)
    return np.ones(len(rates), bool)

  @staticmethod
  def _check(problems, pass_rates) -> np.ndarray:
    rates = np.asarray(pass_rates, np.float64)
    if rates.shape != (len(problems),) or np.any((rates < 0) | (rates > 1)):
      raise ValueError(f"need one pass rate in [0, 1] per problem, got {rates} "
                       f"for {len(problems)} problems")
    return rates

  def stats(self) -> dict:
    return {"generated": self.num_generated, "evaluated": self.num_evaluated,
            "dropped": self.num_dropped}

  def state_dict(self) -> dict:
    return {"seed": self.seed, "generated": self.num_generated,
            "evaluated": self.num_evaluated, "dropped": self.num_dropped}

  def load_state_dict(self, state: Mapping) -> None:
    if state["seed"] != self.seed:
      raise ValueError(f"state of seed {state['seed']} loaded into a curriculum of "
                       f"seed {self.seed}")
    self.num_generated = state["generated"]
    self.num_evaluated = state["evaluated"]
    self.num_dropped = state["dropped"]


def _as_task(task: Task | str, task_kwargs: Mapping | None) -> Task:
  return get_task(task, **(task_kwargs or {})) if isinstance(task, str) else task


@CURRICULA.register("uniform")
class UniformCurriculum(Curriculum):
  """Problems of one family at a fixed difficulty (None: the family's default)."""

  def __init__(self, task: Task | str, *, seed: int, difficulty: float | None = None,
               task_kwargs: Mapping | None = None):
    super().__init__(seed=seed)
    self.task = _as_task(task, task_kwargs)
    self.difficulty = difficulty

  def next_batch(self, num: int) -> list[Problem]:
    start, self.num_generated = self.num_generated, self.num_generated + num
    return [self.task.sample(problem_rng(self.seed, start + i), self.difficulty)
            for i in range(num)]


@CURRICULA.register("adaptive")
class AdaptiveCurriculum(UniformCurriculum):
  """Keeps the recent pass rate inside `band` by moving the difficulty by `step`."""

  def __init__(self, task: Task | str, *, seed: int, difficulty: float | None = None,
               band: tuple[float, float] = (0.1, 0.9), step: float = 0.05, window: int = 64,
               task_kwargs: Mapping | None = None):
    super().__init__(task, seed=seed, task_kwargs=task_kwargs)
    self.difficulty = self.task.default_difficulty if difficulty is None else float(difficulty)
    self.band, self.step, self.window = (float(band[0]), float(band[1])), float(step), int(window)
    self.recent: list[float] = []

  def update(self, problems: Sequence[Problem], pass_rates: Sequence[float]) -> np.ndarray:
    rates = self._check(problems, pass_rates)
    self.num_evaluated += len(rates)
    lo, hi = self.band
    keep = (rates >= lo) & (rates <= hi)
    self.num_dropped += int((~keep).sum())
    self.recent = (self.recent + rates.tolist())[-self.window:]
    mean = float(np.mean(self.recent))
    if mean > hi or mean < lo:
      moved = float(np.clip(self.difficulty + (self.step if mean > hi else -self.step), 0, 1))
      if moved != self.difficulty:
        self.difficulty, self.recent = moved, []
    return keep

  def stats(self) -> dict:
    return {**super().stats(), "difficulty": self.difficulty}

  def state_dict(self) -> dict:
    return {**super().state_dict(), "difficulty": self.difficulty, "recent": list(self.recent)}

  def load_state_dict(self, state: Mapping) -> None:
    super().load_state_dict(state)
    self.difficulty, self.recent = float(state["difficulty"]), list(state["recent"])


@CURRICULA.register("mixture")
class MixtureCurriculum(Curriculum):
  """Each problem comes from family f with probability weights[f] / sum(weights).

  tasks: {family spec: weight}; each family is served by an `inner` curriculum
  (uniform or adaptive, built with `inner_kwargs`) with its own derived seed and
  `task_kwargs[family]`. Served problems carry their family; `update` routes feedback
  back to the family that served each prompt. `tasks_by_family` maps each family to
  the Task that scores it (also registered for `explore_rl.tasks.task_of`).

  weighting: "fixed" (the weights) or "learnability" (adaptive, above), with `ema` the
  moving average's step per evaluated problem, `floor` the score of a family at pass
  rate 0 or 1, and `explore` the share of the fixed weights in the mix.
  """

  def __init__(self, tasks: Mapping[str, float], *, seed: int, inner: str = "uniform",
               inner_kwargs: Mapping | None = None,
               task_kwargs: Mapping[str, Mapping] | None = None, weighting: str = "fixed",
               ema: float = 0.1, floor: float = 0.02, explore: float = 0.1):
    super().__init__(seed=seed)
    if inner == "mixture":
      raise ValueError("a mixture's inner curriculum must be uniform or adaptive")
    if weighting not in ("fixed", "learnability"):
      raise ValueError(f"weighting={weighting!r}; valid: fixed, learnability")
    if not (0 < ema <= 1 and floor > 0 and 0 <= explore <= 1):
      raise ValueError(f"need 0 < ema <= 1, floor > 0, 0 <= explore <= 1; got ema={ema}, "
                       f"floor={floor}, explore={explore}")
    self.names = list(tasks)
    weights = np.asarray([tasks[n] for n in self.names], np.float64)
    if len(weights) == 0 or np.any(weights < 0) or weights.sum() <= 0:
      raise ValueError(f"need non-negative weights with a positive sum, got {dict(tasks)}")
    self.weights = weights
    self.weighting, self.ema, self.floor, self.explore = weighting, float(ema), float(floor), \
        float(explore)
    self.pass_ema = np.full(len(weights), 0.5)  # per family; 0.5: no feedback yet
    self.probs = weights / weights.sum()
    self.children = [
        make_curriculum(inner, task=name, task_kwargs=(task_kwargs or {}).get(name),
                        seed=int(np.random.SeedSequence([self.seed, i]).generate_state(1)[0]),
                        **(inner_kwargs or {}))
        for i, name in enumerate(self.names)]
    self.tasks_by_family = {name: child.task for name, child in zip(self.names, self.children)}
    for name, task in self.tasks_by_family.items():
      register_family(task, name)
    self.owner: dict[str, int] = {}  # prompt -> child, the last _MAX_OWNED served

  def next_batch(self, num: int) -> list[Problem]:
    picks = [int(problem_rng(self.seed, self.num_generated + i).choice(len(self.probs),
                                                                        p=self.probs))
             for i in range(num)]
    self.num_generated += num
    served = {c: iter(child.next_batch(picks.count(c))) for c, child in enumerate(self.children)}
    batch = [next(served[c]) for c in picks]
    batch = [p if p.family == self.names[c] else dataclasses.replace(p, family=self.names[c])
             for c, p in zip(picks, batch)]
    for c, p in zip(picks, batch):
      self.owner.pop(p.prompt, None)  # re-insert: the dict's order is the serving order
      self.owner[p.prompt] = c
    while len(self.owner) > _MAX_OWNED:
      del self.owner[next(iter(self.owner))]
    return batch

  def update(self, problems: Sequence[Problem], pass_rates: Sequence[float]) -> np.ndarray:
    rates = self._check(problems, pass_rates)
    unknown = [p.prompt for p in problems if p.prompt not in self.owner]
    if unknown:
      raise ValueError(f"update for problems this mixture did not serve: {unknown[:3]}")
    owners = np.array([self.owner[p.prompt] for p in problems])
    keep = np.ones(len(problems), bool)
    for c, child in enumerate(self.children):
      idx = np.flatnonzero(owners == c)
      if len(idx):
        keep[idx] = child.update([problems[i] for i in idx], rates[idx])
    self.num_evaluated += len(rates)
    self.num_dropped += int((~keep).sum())
    for c, rate in zip(owners, rates):
      self.pass_ema[c] += self.ema * (rate - self.pass_ema[c])
    self._reweight()
    return keep

  def _reweight(self) -> None:
    """The draw probabilities from the weights (and, adaptively, the pass-rate averages)."""
    base = self.weights / self.weights.sum()
    if self.weighting == "fixed":
      self.probs = base
      return
    score = self.weights * (self.pass_ema * (1 - self.pass_ema) + self.floor)
    self.probs = (1 - self.explore) * score / score.sum() + self.explore * base

  def draw(self, seed: int, num: int) -> list[Problem]:
    """`num` problems of stream `seed`, independent of the curriculum's position (SFT
    data, fixed by (seed, step)): family by the current probabilities, then a problem of
    that family at its inner curriculum's difficulty."""
    out = []
    for i in range(num):
      rng = problem_rng(seed, i)
      c = int(rng.choice(len(self.probs), p=self.probs))
      child = self.children[c]
      p = child.task.sample(rng, child.difficulty)
      out.append(p if p.family == self.names[c] else dataclasses.replace(p, family=self.names[c]))
    return out

  def stats(self) -> dict:
    out = super().stats()
    for i, (name, child) in enumerate(zip(self.names, self.children)):
      out.update({f"{name}/{k}": v for k, v in child.stats().items()})
      if self.weighting != "fixed":
        out.update({f"{name}/prob": float(self.probs[i]),
                    f"{name}/pass_ema": float(self.pass_ema[i])})
    return out

  def state_dict(self) -> dict:
    return {**super().state_dict(), "children": [c.state_dict() for c in self.children],
            "owner": list(self.owner.items()), "pass_ema": self.pass_ema.tolist()}

  def load_state_dict(self, state: Mapping) -> None:
    super().load_state_dict(state)
    for child, child_state in zip(self.children, state["children"], strict=True):
      child.load_state_dict(child_state)
    self.owner = {prompt: int(c) for prompt, c in state["owner"]}
    if "pass_ema" in state:  # absent in states saved before adaptive weighting
      self.pass_ema = np.asarray(state["pass_ema"], np.float64)
    self._reweight()
