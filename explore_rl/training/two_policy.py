"""Explore vs exploit: one policy collects the data, another is trained from it and shipped.

docs/algorithms.md, "Two policies, dependent sampling". The explore policy μ draws
every rollout (`Policies(trained=exploit, behaviour=explore)`, with the run's sampler:
independent, `sequential` or `sketch`); the exploit policy π (evaluated, deployed)
is trained on those samples by the run's objective (`config.objective`, e.g. GRPO)
with the importance correction `objective.is_correction` (objectives/importance.py;
docs/algorithms.md, "Importance corrections") of the ratio

    ρ_t = π(y_t | x, y_<t) / μ(y_t | ctx_t),   π on the plain prompt x at the run's
                                              temperature, μ in the context that drew y_t

(configs/explore_exploit.py: `seq_tis`, w = min(Π_t ρ_t, is_cap) per sequence). The
explore policy is configured by `config.explore`:

  params       "separate": its own parameter set and optimizer (from explore.init_from,
               default the exploit's start); "shared": the exploit's parameters;
  instruction  text it reads before every prompt (an "explore" instruction; "" none);
  temperature  its sampling temperature;
  frozen       True: never trained; else trained on the same rollouts by its own
               objective `explore.objective` (by name: Poly-EPO's set_rl, pass@k, ...) on
               its own prompt, with that objective's importance correction towards its
               own prompt when a dependent sampler drew in another context. With shared
               parameters both objectives update the one parameter set (exploit update,
               then explore update).

Shared parameters, no instruction, the run's temperature and a frozen explore policy
is explore = exploit: the mode is then exactly the single-policy trainer (the
sampler gets `Policies(exploit)`, every weight is exp(0) = 1).

Metrics: every step the exploit update's importance diagnostics over the rollout
(`mismatch/kl`, `mismatch/is_weight_mean`, `mismatch/is_weight_max`, `mismatch/ess`,
`mismatch/masked_frac`, ...; `importance.mismatch_metrics`) and the explore update's
losses and diagnostics (`explore/...`);
at every eval the exploit's held-out pass@k and strategies (as the single-policy
trainer: `pass@1`, ...) and the explore policy's, drawn as in training
(`explore/pass@k`, `explore/distinct_strategies`). Checkpoints hold both policies and
optimizers (`checkpoints/` the exploit's train state, `explore_checkpoints/` a separate
explore state); a resumed run writes the same metrics as an uninterrupted one.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.distributed import to_host
from explore_rl.errors import ConfigError
from explore_rl.eval.passk import pass_at_k_curve
from explore_rl.models import sharding
from explore_rl.models.flops import sequence_flops
from explore_rl.models.logprobs import score_responses
from explore_rl.sampling import Policies
from explore_rl.sampling.rollout import ScoredRollout, sample_and_score
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.training.epochs import learner_epochs, rl_epochs
from explore_rl.training.flops import add_flops, add_update_flops
from explore_rl.training.group_context import group_context
from explore_rl.training.objective_builder import Objective
from explore_rl.training.rl import RLTrainer
from explore_rl.training.state import init_state, optimizer_from_config
from explore_rl.training.update import RLBatch, rl_update
from explore_rl.training.policy_loader import initial_policy

PARAMS_MODES = ("separate", "shared")
EXPLORE_CHECKPOINTS = "explore_checkpoints"


def explore_settings(config):
  """The validated `config.explore` block (ConfigError, one line, for a bad value)."""
  e = config.get("explore")
  if e is None:
    raise ConfigError("trainer 'explore_exploit' needs a config.explore block "
                      "(configs/explore_exploit.py)")
  if e.params not in PARAMS_MODES:
    raise ConfigError(f"config.explore.params={e.params!r}; valid: {', '.join(PARAMS_MODES)}")
  t = e.temperature
  if isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0:
    raise ConfigError(f"config.explore.temperature must be > 0, got {t!r}")
  return e


def exploit_then_explore(run, scored: ScoredRollout, adv: np.ndarray, step: int, rng) -> dict:
  """The two-policy update component: the exploit update (the RL one, with its importance
  correction and `mismatch/...` diagnostics), then the explore policy's own update."""
  out = rl_epochs(run, scored, adv, step, rng)
  if run.explore_objective is not None:
    out.update(explore_update(run, scored, step, jax.random.fold_in(rng, 1_000_003)))
  return out


def explore_update(run, scored: ScoredRollout, step: int, rng) -> dict:
  """The explore policy's own objective on the same rollouts, on its own prompt.

  π_old is the explore policy on its prompt (instruction + problem) at its temperature
  (one scoring pass); behaviour log-probs are the sampler's (a dependent sampler's
  context differs from that prompt: its objective's importance correction weights it).
  """
  c, e, obj = run.config, run.explore_cfg, run.explore_objective
  k_adv, k_update = jax.random.split(rng)
  context, adv_metrics = group_context(run, scored, obj.needs, k_adv)
  shaped, adv = map(np.asarray, to_host(obj(context)))
  dev, ro, n = scored.batch, scored.host, scored.num_samples
  tokens, valid = run.parts.sampler.drawing_prompts(run.policies(), scored.problems)
  tokens, valid = jnp.repeat(tokens, n, axis=0), jnp.repeat(valid, n, axis=0)
  policy = run.explore_policy
  temperature = float(e.temperature)
  old = score_responses(policy.graphdef, policy.params, tokens, valid, dev.tokens, dev.mask,
                        temperature=temperature)[0]
  add_flops(run.counters, "recompute",
            sequence_flops(policy.config, tokens.shape[0], tokens.shape[1] + dev.tokens.shape[1]))
  # The rollout's fields from its host copy; `learner_epochs` brings the rest over once.
  full = RLBatch(tokens, valid, ro.tokens, ro.mask, old, ro.behaviour_logprobs,
                 adv.reshape(-1).astype(np.float32))
  shared = e.params == "shared"
  optimizer = run.parts.optimizer if shared else run.explore_optimizer

  def update(mb: RLBatch, key) -> dict:
    state = run.state if shared else run.explore_state
    state, metrics = rl_update(policy.graphdef, optimizer, obj.loss_spec, state,
                               run.explore_ref, mb, key,
                               micro_batches=c.learner.micro_batches, temperature=temperature)
    add_update_flops(run.counters, policy.config, mb, obj.loss_spec,
                     micro_batches=c.learner.micro_batches)
    if shared:
      run.state = state
    else:
      run.explore_state = state
    return metrics

  metrics = learner_epochs(run, full, step, k_update, update)
  metrics.update(obj.mismatch_metrics(old, ro.behaviour_logprobs, ro.mask))
  run.counters["updates_skipped_total"] += metrics["updates_skipped"]
  out = {f"explore/{k}": v for k, v in {**metrics, **adv_metrics}.items()}
  out["explore/shaped_reward_mean"] = float(shaped.mean())
  out["explore/advantage_abs_mean"] = float(np.abs(adv).mean())
  return out


class TwoPolicyTrainer(RLTrainer):
  """`trainer="explore_exploit"`: the RL trainer with an explore policy drawing the data
  (`policies`) and the update component `exploit_then_explore`."""
  update = staticmethod(exploit_then_explore)

  def __init__(self, config, workdir: str, **kwargs):
    e = explore_settings(config)                              # before any work
    self.explore_cfg = e
    self.explore_objective = None if e.frozen else Objective(e.objective)
    self.identical = (e.params == "shared" and not e.instruction and e.frozen
                      and float(e.temperature) == float(config.rollout.temperature))
    if not self.identical and config.objective.get("is_correction", "none") == "none":
      raise ConfigError("trainer 'explore_exploit' trains the exploit policy on the explore "
                        "policy's samples: set objective.is_correction (e.g. token_tis)")
    super().__init__(config, workdir, **kwargs)
    c = config
    self.explore_ckpt = None
    if e.params == "separate":
      start = e.init_from or c.init_from
      self.explore_base = initial_policy(c, self.mesh, start)
      if self.explore_base.config.vocab_size != self.policy.config.vocab_size:
        raise ConfigError(f"explore.init_from={start!r} has another vocabulary than the "
                          "exploit policy: they must share the tokenizer")
      self.explore_optimizer = optimizer_from_config(e.optim, c.total_steps)
      self.explore_state = sharding.place_on_mesh(
          init_state(self.explore_base.params, self.explore_optimizer, c.seed + 1), self.mesh)
      self.explore_ckpt = Checkpointer(os.path.join(workdir, EXPLORE_CHECKPOINTS),
                                       keep=c.get("keep_checkpoints", 3))
      if self.start_step:                                    # the explore state of that step
        self.explore_state, _ = self.explore_ckpt.restore(self.explore_state,
                                                          step=self.start_step)
    obj = self.explore_objective
    self.explore_ref = None
    if obj is not None and "ref_logprobs" in obj.loss_spec.needs:
      base = self.explore_base.params if e.params == "separate" else self.policy.params
      self.explore_ref = jax.tree.map(jnp.copy, base)

  # -- the two policies ----------------------------------------------------------------------
  @property
  def explore_policy(self):
    if self.explore_cfg.params == "shared":
      return self.current_policy
    return self.explore_base.with_params(self.explore_state.params)

  def policies(self) -> Policies:
    if self.identical:                                        # explore = exploit
      return Policies(self.current_policy, teacher=self.teacher)
    e = self.explore_cfg
    return Policies(self.current_policy, behaviour=self.explore_policy, teacher=self.teacher,
                    behaviour_instruction=e.instruction,
                    behaviour_temperature=float(e.temperature))

  # -- eval, checkpoints ---------------------------------------------------------------------
  def evaluate(self, done: int) -> dict:
    """The exploit policy's held-out metrics (RLTrainer's), and the explore policy's:
    pass@k and distinct successful strategies of the samples it draws in training (the
    run's sampler, instruction and temperature), on the same held-out problems."""
    out = super().evaluate(done)
    c = self.config
    problems = sum(self.eval_problems.values(), [])
    rng = jax.random.key(c.seed + 2)
    num_correct, distinct = [], []
    for start in range(0, len(problems), 64):
      rng, key = jax.random.split(rng)
      part = sample_and_score(self.parts.sampler, self.policies(), self.parts.task,
                              problems[start:start + 64], num_samples=c.eval.num_samples,
                              rng=key)
      num_correct.append(part.correct.sum(axis=1))
      distinct.append(part.distinct_successful_strategies())
    curve = pass_at_k_curve(np.concatenate(num_correct), c.eval.num_samples)
    out.update({f"explore/{k}": v for k, v in curve.metrics("pass").items()})
    out["explore/distinct_strategies"] = float(np.concatenate(distinct).mean())
    return out

  def save(self, step: int):
    super().save(step)
    if self.explore_ckpt is not None:
      self.explore_ckpt.save(step, self.explore_state, {"step": step})

  def run(self) -> dict:
    try:
      return super().run()
    finally:
      if self.explore_ckpt is not None:
        self.explore_ckpt.close()


def train_two_policy(config, workdir: str, *, progress: bool = True,
                     allow_method_change: bool = False) -> dict:
  return TwoPolicyTrainer(config, workdir, progress=progress,
                          allow_method_change=allow_method_change).run()
