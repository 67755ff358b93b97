"""The self-distillation term of the RL update: its settings, its teacher, the EMA update.

`config.objective.distill` adds a per-token distillation loss to any RL objective
(docs/algorithms.md, "Self-distillation"; GKD arXiv 2306.13649):

    ℓ_t = ℓ_t^RL + coef · D(p_s(·|x, y_<t), p*(·|t)),   p* = aggregate(z_s, sg(z_t))

before the loss is aggregated over tokens, with z_s the student's logits on the plain
prompt (with gradient) and z_t the teacher's on the privileged prompt
`Task.teacher_prompt(problem)` (the solution as a hint), stop-gradient. The teacher is

  initial  the frozen initial params (OPSD, arXiv 2601.18734),
  ema      an exponential moving average θ_T ← d·θ_T + (1 − d)·θ of the student, updated
           after every optimizer update and checkpointed with the run,
  live     the current params under stop_gradient,

or, with `config.teacher_from` (a run workdir or Hugging Face directory), a separate
frozen checkpoint (on-policy distillation from a larger teacher). `privileged=False`
shows the teacher the plain prompt (classic on-policy distillation).
With `coef = 0` (the default) nothing here runs: the update is the plain RL update.
D defaults to the forward KL(p* ‖ p_s). A reverse KL (or "sampled", or jsd at beta = 1)
towards `poe`, `interp` or `trust_region` is refused: the student's share of p* cancels
from its gradient, which is then the teacher's rescaled (`teacher_only_gradient`).
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from explore_rl.errors import ConfigError
from explore_rl.objectives.distillation import (AGGREGATION_METHODS, DIVERGENCES,
                                                teacher_only_gradient)
from explore_rl.training.policy_loader import load_initial_policy

TEACHERS = ("initial", "ema", "live")
DEFAULTS = dict(coef=0.0, method="poe", divergence="forward_kl", alpha=1.0, s=0.5,
                kl_budget=0.1, beta=0.5, teacher="initial", ema_decay=0.99, privileged=True,
                teacher_prompt_len=0)


@dataclasses.dataclass(frozen=True)
class DistillSpec:
  """Hashable settings of the distillation term (a static argument of the jitted update)."""
  coef: float = 1.0
  method: str = "poe"
  divergence: str = "forward_kl"
  alpha: float = 1.0
  s: float = 0.5
  kl_budget: float = 0.1
  beta: float = 0.5

  def loss_kwargs(self) -> dict:
    """The keyword arguments of `objectives.distillation.distillation_loss`."""
    return dict(method=self.method, divergence=self.divergence, alpha=self.alpha, s=self.s,
                kl_budget=self.kl_budget, beta=self.beta, coef=self.coef)


@dataclasses.dataclass(frozen=True)
class DistillSettings:
  """Everything the trainer needs: the loss's `spec`, where the teacher comes from."""
  spec: DistillSpec
  teacher: str
  ema_decay: float
  privileged: bool
  teacher_prompt_len: int


def distill_settings(cfg) -> DistillSettings | None:
  """`config.objective.distill` validated; None when absent or coef == 0 (the plain update)."""
  if cfg is None:
    return None
  cfg = dict(cfg)
  unknown = sorted(set(cfg) - set(DEFAULTS))
  if unknown:
    raise ConfigError(f"objective.distill takes no {', '.join(unknown)}; its keys: "
                      f"{', '.join(DEFAULTS)}")
  c = {**DEFAULTS, **cfg}
  if not float(c["coef"]) >= 0:
    raise ConfigError(f"objective.distill.coef must be >= 0, got {c['coef']!r}")
  if float(c["coef"]) == 0.0:
    return None
  if c["method"] not in AGGREGATION_METHODS:
    raise ConfigError(f"objective.distill.method={c['method']!r}; valid: "
                      f"{', '.join(AGGREGATION_METHODS)}")
  kinds = DIVERGENCES + ("sampled",)
  if c["divergence"] not in kinds:
    raise ConfigError(f"objective.distill.divergence={c['divergence']!r}; valid: "
                      f"{', '.join(kinds)}")
  if c["teacher"] not in TEACHERS:
    raise ConfigError(f"objective.distill.teacher={c['teacher']!r}; valid: {', '.join(TEACHERS)}")
  if not 0.0 <= float(c["ema_decay"]) < 1.0:
    raise ConfigError(f"objective.distill.ema_decay must be in [0, 1), got {c['ema_decay']!r}")
  if not (0.0 <= float(c["beta"]) <= 1.0 and 0.0 <= float(c["s"]) <= 1.0
          and float(c["alpha"]) >= 0 and float(c["kl_budget"]) >= 0):
    raise ConfigError(f"objective.distill: need 0 <= beta, s <= 1 and alpha, kl_budget >= 0; "
                      f"got {c}")
  reduced = teacher_only_gradient(c["method"], c["divergence"], float(c["beta"]))
  if reduced is not None:
    raise ConfigError(f"objective.distill: method={c['method']} with divergence="
                      f"{c['divergence']} trains like method=teacher (gradient {reduced}: the "
                      f"student's share of p* cancels under a reverse KL, docs/algorithms.md); "
                      f"use divergence=forward_kl or jsd (beta < 1), or method=teacher")
  spec = DistillSpec(coef=float(c["coef"]), method=c["method"], divergence=c["divergence"],
                     alpha=float(c["alpha"]), s=float(c["s"]), kl_budget=float(c["kl_budget"]),
                     beta=float(c["beta"]))
  return DistillSettings(spec, c["teacher"], float(c["ema_decay"]), bool(c["privileged"]),
                         int(c["teacher_prompt_len"]))


@functools.partial(jax.jit, donate_argnums=(0,))
def ema_update(teacher_params, params, decay):
  """θ_T ← d·θ_T + (1 − d)·θ, leaf by leaf in each leaf's dtype (the old θ_T is donated)."""
  return jax.tree.map(lambda t, p: (decay * t + (1.0 - decay) * p).astype(t.dtype),
                      teacher_params, params)


def make_teacher(config, mesh, policy, distill: DistillSettings | None):
  """The teacher of the distillation term and of samplers that aggregate with one: the
  checkpoint `teacher_from` (frozen), a copy of the initial params (`initial`, or the start
  of an `ema` teacher), or None: the live policy (`live`, or no teacher at all)."""
  if config.get("teacher_from"):
    if distill is not None and distill.teacher != "initial":
      raise ConfigError(f"teacher_from={config.teacher_from!r} is a frozen teacher; "
                        f"objective.distill.teacher={distill.teacher!r} needs it empty")
    teacher = load_initial_policy(config.teacher_from, mesh, config.get("hf"))
    if teacher.config.vocab_size != policy.config.vocab_size:
      raise ConfigError(f"teacher_from={config.teacher_from!r} has a vocabulary of "
                        f"{teacher.config.vocab_size}, the student "
                        f"{policy.config.vocab_size}: they must share the tokenizer")
    return teacher
  if distill is not None and distill.teacher in ("initial", "ema"):
    # A copy: the update donates the train state's buffers.
    return policy.with_params(jax.tree.map(jnp.copy, policy.params))
  return None
