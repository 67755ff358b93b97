"""Logit aggregation, per-token divergences and the distillation losses."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import distillation as dl

V = 11


def _logits(seed, shape=(3, 4, V), scale=2.0):
  return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _np_logsoftmax(z):
  z = np.asarray(z, np.float64)
  m = z.max(-1, keepdims=True)
  return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _np_kl(lp, lq):
  p = np.exp(lp)
  return np.sum(np.where(p > 0, p * (lp - lq), 0.0), -1)


def _trl_generalized_jsd(student_logits, teacher_logits, beta):
  """TRL's GKDTrainer.generalized_jsd_loss per token (reduction="none", summed over V),
  in NumPy, with its two special cases: beta == 0 -> kl_div(student_lp, teacher_lp),
  beta == 1 -> kl_div(teacher_lp, student_lp); torch's kl_div(input, target) is
  KL(target ‖ exp(input))."""
  s, t = _np_logsoftmax(student_logits), _np_logsoftmax(teacher_logits)
  if beta == 0:
    return _np_kl(t, s)
  if beta == 1:
    return _np_kl(s, t)
  mix = np.logaddexp(s + np.log(1 - beta), t + np.log(beta))
  return beta * _np_kl(t, mix) + (1 - beta) * _np_kl(s, mix)


# --- aggregate_logits --------------------------------------------------------------------

def test_poe_is_zero_where_student_is_zero_and_student_at_alpha_zero():
  zs, zt = _logits(0), _logits(1)
  zs = zs.at[..., :3].set(-jnp.inf)           # student excludes tokens 0..2
  zt = zt.at[..., 2:5].add(10.0)              # the teacher strongly prefers 2..4
  for alpha in (0.5, 1.0, 3.0):
    p = np.exp(np.asarray(dl.aggregate_logits(zs, zt, method="poe", alpha=alpha)))
    assert (p[..., :3] == 0).all()
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    want = np.exp(_np_logsoftmax(zs) + alpha * _np_logsoftmax(zt))
    np.testing.assert_allclose(p, want / want.sum(-1, keepdims=True), atol=1e-6)
  p0 = dl.aggregate_logits(zs, zt, method="poe", alpha=0.0)
  np.testing.assert_allclose(np.exp(p0), np.exp(_np_logsoftmax(zs)), atol=1e-7)
  assert np.isfinite(np.asarray(p0)[..., 3:]).all()


def test_poe_disjoint_supports_fall_back_to_student():
  zs = jnp.array([0.0, 1.0, -jnp.inf, -jnp.inf])
  zt = jnp.array([-jnp.inf, -jnp.inf, 0.0, 2.0])
  out = dl.aggregate_logits(zs, zt, method="poe")
  np.testing.assert_allclose(np.exp(out), np.exp(_np_logsoftmax(zs)), atol=1e-7)


def test_interp_endpoints_and_midpoint():
  zs, zt = _logits(2), _logits(3)
  np.testing.assert_allclose(dl.aggregate_logits(zs, zt, method="interp", s=0.0),
                             _np_logsoftmax(zs), atol=1e-5)
  np.testing.assert_allclose(dl.aggregate_logits(zs, zt, method="interp", s=1.0),
                             _np_logsoftmax(zt), atol=1e-5)
  np.testing.assert_allclose(dl.aggregate_logits(zs, zt, method="interp", s=0.3),
                             _np_logsoftmax(np.asarray(zs) + 0.3 * (np.asarray(zt) - zs)),
                             atol=1e-5)


def test_teacher_method_is_the_teacher():
  zs, zt = _logits(4), _logits(5)
  np.testing.assert_allclose(dl.aggregate_logits(zs, zt, method="teacher"), _np_logsoftmax(zt),
                             atol=1e-5)


def _interp_kl(zs, zt, s):
  """KL(p*_s ‖ p_s) in float64 NumPy, s [...]."""
  zs, zt = np.asarray(zs, np.float64), np.asarray(zt, np.float64)
  return _np_kl(_np_logsoftmax(zs + np.asarray(s)[..., None] * (zt - zs)), _np_logsoftmax(zs))


@pytest.mark.parametrize("budget", [0.01, 0.1, 0.5])
def test_trust_region_meets_budget_and_is_maximal(budget):
  zs, zt = _logits(6, (64, V)), _logits(7, (64, V), scale=3.0)
  zt = zt.at[:8].set(zs[:8] + 0.01 * zt[:8])  # a few tokens where the teacher is within budget
  s = np.asarray(dl.trust_region_coefficient(zs, zt, kl_budget=budget))
  assert ((s >= 0) & (s <= 1)).all()
  assert (s[:8] == 1.0).all()
  kl = _interp_kl(zs, zt, s)
  assert (kl <= budget * (1 + 1e-4)).all()
  inner = s < 1.0
  assert inner.sum() > 30  # the test exercises the bisection
  above = _interp_kl(zs, zt, np.minimum(s + dl.TRUST_REGION_TOL, 1.0))
  assert (above[inner] > budget).all()
  # aggregate_logits uses that coefficient
  agg = dl.aggregate_logits(zs, zt, method="trust_region", kl_budget=budget)
  want = _np_logsoftmax(np.asarray(zs) + s[:, None] * (np.asarray(zt) - np.asarray(zs)))
  np.testing.assert_allclose(agg, want, atol=1e-4)


def test_trust_region_is_jittable_and_teacher_within_budget_gives_teacher():
  zs = _logits(8)
  zt = zs + 0.01 * _logits(9)
  f = jax.jit(lambda a, b: dl.aggregate_logits(a, b, method="trust_region", kl_budget=0.1))
  np.testing.assert_allclose(f(zs, zt), _np_logsoftmax(zt), atol=1e-5)


def test_unknown_names_are_rejected_with_the_valid_ones():
  zs = _logits(0)
  with pytest.raises(ValueError, match="poe.*interp.*trust_region.*teacher"):
    dl.aggregate_logits(zs, zs, method="mean")
  with pytest.raises(ValueError, match="forward_kl.*reverse_kl.*jsd"):
    dl.token_divergence(zs, zs, kind="tv")
  with pytest.raises(AssertionError, match="teacher_logits must have the shape of student_logits"):
    dl.aggregate_logits(zs, zs[..., :5], method="poe")


# --- token_divergence --------------------------------------------------------------------

def test_kl_directions():
  zs, zt = _logits(10), _logits(11)
  target = jax.nn.log_softmax(zt)
  np.testing.assert_allclose(dl.token_divergence(zs, target, kind="forward_kl"),
                             _np_kl(_np_logsoftmax(zt), _np_logsoftmax(zs)), rtol=1e-4)
  np.testing.assert_allclose(dl.token_divergence(zs, target, kind="reverse_kl"),
                             _np_kl(_np_logsoftmax(zs), _np_logsoftmax(zt)), rtol=1e-4)


@pytest.mark.parametrize("beta", [0.0, 1e-3, 0.1, 0.5, 0.9, 1.0])
def test_jsd_matches_trls_formula(beta):
  zs, zt = _logits(12), _logits(13)
  got = dl.token_divergence(zs, jax.nn.log_softmax(zt), kind="jsd", beta=beta)
  np.testing.assert_allclose(got, _trl_generalized_jsd(zs, zt, beta), rtol=1e-4, atol=1e-6)


def test_jsd_limits():
  zs, zt = _logits(14), _logits(15)
  target = jax.nn.log_softmax(zt)
  fwd = np.asarray(dl.token_divergence(zs, target, kind="forward_kl"))
  rev = np.asarray(dl.token_divergence(zs, target, kind="reverse_kl"))
  assert np.abs(fwd - rev).max() > 0.1  # the two directions are distinguishable here
  # β = 0 / 1 are forward / reverse KL exactly (TRL's special cases) ...
  np.testing.assert_allclose(dl.token_divergence(zs, target, kind="jsd", beta=0.0), fwd, rtol=1e-6)
  np.testing.assert_allclose(dl.token_divergence(zs, target, kind="jsd", beta=1.0), rev, rtol=1e-6)
  # ... and the general formula approaches them with the same assignment: JSD_β/β → forward KL
  # as β → 0 and JSD_β/(1 − β) → reverse KL as β → 1, with an O(β) error (float64 reference).
  errs = []
  for eps in (1e-4, 1e-5, 1e-6):
    errs.append(np.abs(_trl_generalized_jsd(zs, zt, eps) / eps - fwd).max())
    np.testing.assert_allclose(_trl_generalized_jsd(zs, zt, eps) / eps, fwd, rtol=1e-2)
    np.testing.assert_allclose(_trl_generalized_jsd(zs, zt, 1 - eps) / eps, rev, rtol=1e-2)
  assert errs[2] < errs[1] < errs[0]
  # the swapped assignment is far off
  assert np.abs(_trl_generalized_jsd(zs, zt, 1e-6) / 1e-6 - rev).max() > 0.1


def test_divergences_handle_a_target_with_zeros():
  # a student that excludes tokens (e.g. a masked vocabulary): poe's target excludes them too
  zs, zt = _logits(16).at[..., :2].set(-jnp.inf), _logits(17)
  target = dl.aggregate_logits(zs, zt, method="poe")
  for kind in dl.DIVERGENCES:
    d = dl.token_divergence(zs, target, kind=kind)
    g = jax.grad(lambda z: dl.token_divergence(z, target, kind=kind).sum())(zs)
    assert np.isfinite(d).all() and (np.asarray(d) >= -1e-6).all()
    assert np.isfinite(g).all()


# --- distillation_loss -------------------------------------------------------------------

def _batch(seed=20, b=3, t=5):
  zs, zt = _logits(seed, (b, t, V)), _logits(seed + 1, (b, t, V))
  tokens = jax.random.randint(jax.random.key(seed + 2), (b, t), 0, V)
  mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)[:b]
  return zs, zt, tokens, mask


@pytest.mark.parametrize("method", dl.AGGREGATION_METHODS)
@pytest.mark.parametrize("divergence", dl.DIVERGENCES + ("sampled",))
def test_gradient_reaches_only_the_student(method, divergence):
  zs, zt, tokens, mask = _batch()
  zs_garbage = zs.at[0, 3:].set(jnp.nan)  # padding may hold NaN
  zt_garbage = zt.at[2].set(jnp.inf)

  def total(a, b):
    loss, _ = dl.distillation_loss(a, b, tokens, mask, method=method, divergence=divergence)
    return loss.sum()

  g_s, g_t = jax.grad(total, argnums=(0, 1))(zs_garbage, zt_garbage)
  assert (np.asarray(g_t) == 0).all()
  assert np.isfinite(g_s).all()
  assert (np.asarray(g_s)[~np.asarray(mask)] == 0).all()
  assert np.abs(np.asarray(g_s)[np.asarray(mask)]).max() > 1e-4
  loss, metrics = dl.distillation_loss(zs_garbage, zt_garbage, tokens, mask, method=method,
                                       divergence=divergence)
  assert (np.asarray(loss)[~np.asarray(mask)] == 0).all()
  assert all(np.ndim(v) == 0 and np.isfinite(v) for v in metrics.values())


def test_full_vocab_loss_values_and_coef():
  zs, zt, tokens, mask = _batch()
  loss, metrics = dl.distillation_loss(zs, zt, tokens, mask, method="interp", s=0.5,
                                       divergence="forward_kl", coef=0.3)
  target = _np_logsoftmax(np.asarray(zs) + 0.5 * (np.asarray(zt) - np.asarray(zs)))
  want = 0.3 * _np_kl(target, _np_logsoftmax(zs))
  m = np.asarray(mask)
  np.testing.assert_allclose(np.asarray(loss)[m], want[m], rtol=1e-4)
  np.testing.assert_allclose(metrics["distill_loss"], want[m].mean() / 0.3, rtol=1e-4)
  np.testing.assert_allclose(metrics["kl_target_student"], want[m].mean() / 0.3, rtol=1e-4)


def test_trust_region_loss_reports_its_coefficient_and_stays_in_budget():
  zs, zt, tokens, mask = _batch()
  _, metrics = dl.distillation_loss(zs, 3 * zt, tokens, mask, method="trust_region",
                                    kl_budget=0.05)
  assert 0 < float(metrics["trust_region_s"]) < 1
  assert float(metrics["kl_target_student"]) <= 0.05 * (1 + 1e-4)


def test_sampled_token_gradient_is_advantage_times_minus_grad_logp():
  zs, zt, tokens, mask = _batch(seed=30)
  method = dict(method="poe", alpha=1.0)
  target = dl.aggregate_logits(zs, zt, **method)
  gather = lambda lp: jnp.take_along_axis(lp, tokens[..., None], -1)[..., 0]
  adv = gather(target) - gather(jax.nn.log_softmax(zs))                  # [B, T]
  m = mask.astype(jnp.float32)
  # ∇ of Σ_t m·A_t·(−log p_s(y_t)) with A_t held constant
  want = jax.grad(lambda z: jnp.sum(m * adv * -gather(jax.nn.log_softmax(z))))(zs)

  def total(z):
    return dl.distillation_loss(z, zt, tokens, mask, divergence="sampled", **method)[0].sum()

  np.testing.assert_allclose(jax.grad(total)(zs), want, atol=1e-6)
  assert np.abs(np.asarray(want)).max() > 1e-3
  # the same on gathered log-probs only
  def total_tok(z):
    lp = gather(jax.nn.log_softmax(z))
    return dl.sampled_token_distill_loss(lp, gather(target), mask)[0].sum()

  np.testing.assert_allclose(jax.grad(total_tok)(zs), want, atol=1e-6)
  # the advantages helper is that constant, zero under padding, without gradient
  a = dl.distill_token_advantages(gather(jax.nn.log_softmax(zs)), gather(target), mask)
  np.testing.assert_allclose(a, np.where(mask, adv, 0.0), atol=1e-6)
  g = jax.grad(lambda z: dl.distill_token_advantages(gather(jax.nn.log_softmax(z)),
                                                     gather(target), mask).sum())(zs)
  assert (np.asarray(g) == 0).all()


def test_sampled_token_gradient_is_unbiased_for_reverse_kl():
  """E_{y∼p_s}[∇ℓ(y)] = ∇KL(p_s ‖ p*) for a fixed target (exact sum over the vocabulary)."""
  zs, zt = _logits(40, (V,)), _logits(41, (V,))
  target = jax.lax.stop_gradient(dl.aggregate_logits(zs, zt, method="interp", s=0.7))
  p = jax.nn.softmax(zs)
  ones = jnp.ones((1, 1), bool)

  def loss_for(z, y):
    lp = jax.nn.log_softmax(z)[y]
    return dl.sampled_token_distill_loss(lp.reshape(1, 1), target[y].reshape(1, 1), ones)[0][0, 0]

  grads = jax.vmap(jax.grad(loss_for), in_axes=(None, 0))(zs, jnp.arange(V))  # [V, V]
  expected = jnp.einsum("y,yv->v", p, grads)
  exact = jax.grad(lambda z: dl.kl_divergence(jax.nn.log_softmax(z), target))(zs)
  np.testing.assert_allclose(expected, exact, atol=1e-5)


def test_loss_is_jittable_and_bf16_inputs_compute_in_fp32():
  zs, zt, tokens, mask = _batch()
  f = jax.jit(lambda a, b: dl.distillation_loss(a, b, tokens, mask, method="trust_region",
                                                divergence="jsd"))
  loss, _ = f(zs.astype(jnp.bfloat16), zt.astype(jnp.bfloat16))
  assert loss.dtype == jnp.float32 and loss.shape == mask.shape


# --- the aggregation must shape the update ------------------------------------------------

def _token_cosines(a, b):
  """Cosine between the per-token gradients a, b [..., V] -> [...]."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _student_grad(zs, zt, **kwargs):
  tokens, mask = jnp.zeros(zs.shape[:-1], jnp.int32), jnp.ones(zs.shape[:-1], bool)
  return jax.grad(lambda z: dl.distillation_loss(z, zt, tokens, mask, **kwargs)[0].sum())(zs)


def test_default_divergence_lets_the_aggregation_change_the_update_direction():
  """interp (s = 0.5) and trust_region must not train like a rescaled `teacher`: on random
  logits most tokens' gradients point elsewhere (median cosine < 0.99; 1 under reverse KL)."""
  zs, zt = _logits(50, (4, 8, V)), _logits(51, (4, 8, V))
  teacher = _student_grad(zs, zt, method="teacher")
  interp = _token_cosines(_student_grad(zs, zt, method="interp", s=0.5), teacher)
  assert np.median(interp) < 0.99
  coef = np.asarray(dl.trust_region_coefficient(zs, zt, kl_budget=0.1))
  assert (coef < 1).mean() > 0.9
  trust = _token_cosines(_student_grad(zs, zt, method="trust_region", kl_budget=0.1), teacher)
  assert np.median(trust[coef < 1]) < 0.99


def test_reverse_kl_towards_an_aggregate_is_the_teacher_rescaled():
  """The identities behind `teacher_only_gradient`: under the reverse KL the student's share
  of p* cancels (interp: s·g_t; trust_region: s_t·g_t; poe: α·∇[KL(p_s‖p_t) + H(p_s)])."""
  zs, zt = _logits(52, (2, 3, V)), _logits(53, (2, 3, V))
  grad = lambda **kw: np.asarray(_student_grad(zs, zt, divergence="reverse_kl", **kw))
  teacher = grad(method="teacher")
  np.testing.assert_allclose(grad(method="interp", s=0.3), 0.3 * teacher, atol=1e-6)
  coef = np.asarray(dl.trust_region_coefficient(zs, zt, kl_budget=0.1))[..., None]
  np.testing.assert_allclose(grad(method="trust_region", kl_budget=0.1), coef * teacher,
                             atol=1e-6)
  lt = jax.nn.log_softmax(zt)
  cross_entropy = lambda z: -jnp.sum(jax.nn.softmax(z) * lt)      # KL(p_s‖p_t) + H(p_s)
  np.testing.assert_allclose(grad(method="poe", alpha=2.0), 2.0 * jax.grad(cross_entropy)(zs),
                             atol=1e-6)
  for method in ("poe", "interp", "trust_region"):
    assert dl.teacher_only_gradient(method, "reverse_kl") is not None
    assert dl.teacher_only_gradient(method, "sampled") is not None
    assert dl.teacher_only_gradient(method, "jsd", beta=1.0) is not None
    assert dl.teacher_only_gradient(method, "jsd", beta=0.5) is None
    assert dl.teacher_only_gradient(method, "forward_kl") is None
  assert dl.teacher_only_gradient("teacher", "reverse_kl") is None
