"""Self-distillation, aggregated sampling and preference pairs through the trainers.

- the distillation term's gradient is the student's only: with the live policy as teacher
  (the same params), one SGD update equals the gradient with the teacher's logits held
  constant, and differs from the gradient that also flows through the teacher;
- `objective.distill.coef = 0` is the plain update: same parameters, same compiled update;
- the EMA teacher is θ_T ← d·θ_T + (1 − d)·θ after each update, and survives a resume;
- the aggregated sampler runs through the trainer with truncated IS weights (exactly 1 when
  p* is the student).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.models.logprobs import response_logits
from explore_rl.objectives.distillation import aggregate_logits, distillation_loss, token_divergence
from explore_rl.sampling.teacher_prompts import encode_teacher_prompts
from explore_rl.training.dynamic_sampling import sample_groups
from explore_rl.training.epochs import distill_args
from explore_rl.training.rl import RLTrainer
from explore_rl.training.update import RLBatch, rl_update
from explore_rl.training.state import init_state

TIMING = ("time_", "step_time", "tokens_per_s")


def _config(prior, base="grpo:tiny", distill=None, **overrides):
  c = load_config(base)
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.init_from = prior
  c.rollout.prompts_per_step, c.rollout.num_samples = 4, 4
  c.learner.mini_batches = 1
  c.optim.learning_rate = 1e-2
  c.log_clusters = False
  if distill is not None:
    c.objective.distill = distill
  for key, value in overrides.items():
    node = c
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return c


def _params(tree):
  return jax.tree.map(np.array, jax.device_get(tree))


def _max_diff(a, b):
  return max(float(np.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _batch(trainer, step=0):
  """One step's rollout as the trainer's update batch, with the teacher prompts."""
  scored, _ = sample_groups(trainer, jax.random.key(step))
  ro, n = scored.batch, scored.num_samples
  rep = lambda x: jnp.repeat(jnp.asarray(x), n, axis=0)
  tt, tv = encode_teacher_prompts(trainer.policy.tokenizer, scored.problems,
                                  trainer.parts.teacher_prompt_len, trainer.parts.task)
  return RLBatch(rep(ro.prompt_tokens), rep(ro.prompt_valid), ro.tokens, ro.mask,
                 ro.policy_logprobs, ro.behaviour_logprobs,
                 jnp.zeros(ro.tokens.shape[0], jnp.float32), rep(tt), rep(tv))


def test_distill_gradient_reaches_the_student_only(tmp_path, toy_prior):
  distill = {"coef": 1.0, "teacher": "live", "method": "interp", "s": 0.7,
             "divergence": "forward_kl"}
  trainer = RLTrainer(_config(toy_prior, distill=distill, **{"objective.advantage": "none"}),
                      str(tmp_path), progress=False)
  batch = _batch(trainer)
  graphdef, spec = trainer.policy.graphdef, trainer.parts.distill.spec
  params = _params(trainer.state.params)
  sgd = optax.sgd(1.0)

  args = (batch.response_tokens, batch.response_mask)
  logits = lambda p, prompt, valid: response_logits(graphdef, p, prompt, valid, *args)
  token_mean = lambda per_token: per_token.sum() / batch.response_mask.sum()

  def loss(p):                  # the teacher's logits are constants: what the update must use
    zt = logits(params, batch.teacher_prompt_tokens, batch.teacher_prompt_valid)
    zs = logits(p, batch.prompt_tokens, batch.prompt_valid)
    return token_mean(distillation_loss(zs, zt, *args, **spec.loss_kwargs())[0])

  def leaky(p):                 # the same divergence with the gradient through the teacher too
    zt = logits(p, batch.teacher_prompt_tokens, batch.teacher_prompt_valid)
    zs = logits(p, batch.prompt_tokens, batch.prompt_valid)
    target = aggregate_logits(jax.lax.stop_gradient(zs), zt, method="interp", s=spec.s)
    return token_mean(jnp.where(batch.response_mask, token_divergence(
        zs, target, kind="forward_kl"), 0.0))

  loss, leaky = jax.jit(loss), jax.jit(leaky)
  student_only, through_both = jax.jit(jax.grad(loss))(params), jax.jit(jax.grad(leaky))(params)
  assert jnp.allclose(loss(params), leaky(params))
  state = init_state(jax.tree.map(jnp.asarray, params), sgd, 0)
  new_state, metrics = rl_update(graphdef, sgd, trainer.parts.objective.loss_spec, state,
                                 None, batch, jax.random.key(0), micro_batches=1,
                                 temperature=1.0)
  step = jax.tree.map(lambda new, old: old - new, _params(new_state.params), params)  # = grad
  assert float(metrics["distill_loss"]) > 0
  assert _max_diff(step, student_only) < 1e-6
  assert _max_diff(step, through_both) > 1e-4

def test_coef_zero_is_the_plain_update(tmp_path, toy_prior, monkeypatch):
  from explore_rl.training import epochs
  lowered = {}

  def spy(*args, **kwargs):                 # record the program each trainer compiles
    batch = args[5]
    assert batch.teacher_prompt_tokens is None and batch.teacher_prompt_valid is None
    lowered.setdefault("programs", []).append(
        (sorted(kwargs), rl_update.lower(*args, **kwargs).as_text()))
    return rl_update(*args, **kwargs)

  monkeypatch.setattr(epochs, "rl_update", spy)
  plain = RLTrainer(_config(toy_prior), str(tmp_path / "plain"), progress=False)
  m_plain = plain.step(0)
  zero = RLTrainer(_config(toy_prior, distill={"coef": 0.0, "teacher": "ema"}),
                   str(tmp_path / "zero"), progress=False)
  assert zero.parts.distill is None and distill_args(zero) == {} and zero.teacher is None
  m_zero = zero.step(0)
  (keys_plain, hlo_plain), (keys_zero, hlo_zero) = lowered["programs"]
  assert keys_plain == keys_zero and hlo_plain == hlo_zero     # the same compiled update
  assert _max_diff(_params(plain.state.params), _params(zero.state.params)) == 0.0
  for k in m_plain:
    if not k.startswith(TIMING):
      assert m_plain[k] == m_zero[k], k

def test_ema_teacher_follows_the_student_and_survives_a_resume(tmp_path, toy_prior):
  distill = {"coef": 0.5, "teacher": "ema", "ema_decay": 0.75}
  cfg = lambda **kw: _config(toy_prior, distill=distill, **{
      "total_steps": 2, "eval_every": 1, "checkpoint_every": 1, **kw})
  trainer = RLTrainer(cfg(), str(tmp_path / "a"), progress=False)
  initial = _params(trainer.teacher.params)
  trainer.step(0)                                       # one update (mini_batches=1)
  student = _params(trainer.state.params)
  expected = jax.tree.map(lambda t, p: 0.75 * t + 0.25 * p, initial, student)
  assert _max_diff(_params(trainer.teacher.params), expected) < 1e-6
  assert _max_diff(_params(trainer.teacher.params), initial) > 0
  trainer.ckpt.close()
  trainer.ema_ckpt.close()
  trainer.run_dir.close()

  straight = RLTrainer(cfg(), str(tmp_path / "straight"), progress=False)
  straight.run()
  RLTrainer(cfg(total_steps=1), str(tmp_path / "resumed"), progress=False).run()
  resumed = RLTrainer(cfg(), str(tmp_path / "resumed"), progress=False)
  assert resumed.start_step == 1
  resumed.run()
  assert _max_diff(_params(straight.teacher.params), _params(resumed.teacher.params)) < 1e-6
  a, b = (read_metrics(str(tmp_path / d))[-1] for d in ("straight", "resumed"))
  assert a["distill_loss"] == pytest.approx(b["distill_loss"], rel=1e-5)


@pytest.mark.parametrize("method,kwargs,unit_weights", [
    ("poe", {"alpha": 1.0}, False), ("interp", {"s": 0.0}, True)])
def test_aggregated_sampler_through_the_trainer_with_is_weights(tmp_path, toy_prior, method,
                                                                kwargs, unit_weights):
  c = _config(toy_prior, **{"rollout.sampler": "aggregated",
                            "objective.is_correction": "token_tis"})
  c.rollout.sampler_kwargs = {"method": method, **kwargs}
  trainer = RLTrainer(c, str(tmp_path), progress=False)
  scored, _ = sample_groups(trainer, jax.random.key(0))
  host = scored.host
  gap = np.abs(host.behaviour_logprobs - host.policy_logprobs)[host.mask]
  metrics = trainer.step(0)
  assert np.isfinite(metrics["loss"]) and metrics["updates_skipped"] == 0
  assert "mismatch/is_weight_mean" in metrics and "mismatch/truncated_frac" in metrics
  if unit_weights:          # p* = p_s: behaviour == policy, every weight is 1
    assert gap.max() < 1e-4
    assert metrics["mismatch/is_weight_mean"] == pytest.approx(1.0, abs=1e-4)
  else:                     # the teacher reshapes p*: the weights correct a real shift
    assert gap.max() > 1e-2


def test_on_policy_distill_from_a_separate_checkpoint(tmp_path, toy_prior):
  """teacher_from = the student's own start: KL(p_s ‖ p_t) is 0 at the first step, and the
  loaded teacher stays frozen while the student moves."""
  c = _config(toy_prior, base="on_policy_distill:tiny", teacher_from=toy_prior,
              **{"objective.entropy_coef": 0.05})
  trainer = RLTrainer(c, str(tmp_path), progress=False)
  assert trainer.teacher is not None and distill_args(trainer)["teacher_params"] is not None
  teacher = _params(trainer.teacher.params)
  metrics = trainer.step(0)
  assert metrics["distill_loss"] == pytest.approx(0.0, abs=1e-5)
  assert _max_diff(_params(trainer.teacher.params), teacher) == 0.0
  assert _max_diff(_params(trainer.state.params), teacher) > 0
  assert trainer.step(1)["distill_loss"] > 0        # the student has left the teacher
