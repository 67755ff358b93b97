"""Importance corrections (objectives/importance.py) against NumPy references, the policy
term that applies them, and the start-up checks of `objective.is_correction`."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.objectives import importance
from explore_rl.objectives.catalog import POLICY_LOSSES
from explore_rl.objectives.loss_terms import Term, TokenInputs
from explore_rl.training.components import build_components
from explore_rl.training.objective_builder import Objective

CORRECTIONS = ["none", "token_tis", "seq_tis", "token_mis", "seq_mis", "geometric"]
CAP, LOWER, UPPER = 1.7, 0.6, 1.8
SEQUENCE_LEVEL = {"seq_tis", "seq_mis", "geometric"}


def _batch(seed=0, b=6, t=7):
  """Random log-probs with ragged padding (row 3 all padding) holding garbage."""
  rng = np.random.default_rng(seed)
  old = rng.normal(-1.5, 0.8, (b, t))
  behaviour = old + rng.normal(0.0, 0.3, (b, t))
  lengths = rng.integers(1, t + 1, b)
  lengths[3] = 0
  mask = np.arange(t)[None] < lengths[:, None]
  return old, behaviour, mask


def _garbage(x, mask, fill):
  return np.where(mask, x, fill).astype(np.float32)


def np_units(old, behaviour, mask, correction):
  """(weights, kept, truncated, valid) per unit, float64, ratios as plain products."""
  ratio = np.where(mask, np.exp(old - behaviour), 1.0)          # ρ_t, 1 under padding
  seq_ratio = np.prod(ratio, axis=1)                            # Π_t ρ_t
  n = mask.sum(1)
  if correction == "none":
    w = np.ones_like(ratio)
  elif correction == "token_tis":
    w = np.minimum(ratio, CAP)
  elif correction == "seq_tis":
    w = np.minimum(seq_ratio, CAP)
  elif correction == "token_mis":
    w = np.where((ratio >= LOWER) & (ratio <= UPPER), ratio, 0.0)
  elif correction == "seq_mis":
    w = np.where((seq_ratio >= LOWER) & (seq_ratio <= UPPER), seq_ratio, 0.0)
  else:                                                         # geometric
    w = seq_ratio ** (1.0 / np.maximum(n, 1))
  if correction in SEQUENCE_LEVEL:
    kept = (w > 0) | (correction != "seq_mis")
    truncated = seq_ratio > CAP
    return w, kept, truncated, n > 0
  kept = (w > 0) | (correction != "token_mis")
  return w, kept, ratio > CAP, mask


def np_token_weights(old, behaviour, mask, correction):
  w = np_units(old, behaviour, mask, correction)[0]
  return np.where(mask, w[:, None] if w.ndim == 1 else w, 0.0)


def _weights(old, behaviour, mask, correction):
  return np.asarray(importance.importance_weights(
      old.astype(np.float32), behaviour.astype(np.float32), mask, correction=correction,
      cap=CAP, lower=LOWER, upper=UPPER))


@pytest.mark.parametrize("correction", CORRECTIONS)
def test_weights_match_numpy_and_padding_never_matters(correction):
  old, behaviour, mask = _batch()
  want = np_token_weights(old, behaviour, mask, correction)
  np.testing.assert_allclose(_weights(old, behaviour, mask, correction), want, rtol=2e-5,
                             atol=1e-7)
  if correction in ("token_mis", "seq_mis"):
    assert 0 < np.count_nonzero(want) < mask.sum(), "the test needs kept and dropped units"
  for fill_old, fill_behaviour in ((np.nan, np.inf), (1e4, -1e4), (0.0, 0.0)):
    got = _weights(_garbage(old, mask, fill_old), _garbage(behaviour, mask, fill_behaviour),
                   mask, correction)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
  assert np.all(_weights(old, behaviour, mask, correction)[~mask] == 0.0)


def test_mis_drops_exactly_the_hand_computed_tokens_and_sequences():
  # ratios per token; bounds [0.6, 1.8].
  ratio = np.array([[1.5, 2.0, 0.7, 1.0],      # token 1 dropped (2 > 1.8); Π = 2.1 -> dropped
                    [0.5, 1.9, 1.0, 9.0],      # tokens 0, 1 dropped, 3 is padding; Π = 0.95 kept
                    [1.0, 1.2, 1.3, 1.0],      # nothing dropped; Π = 1.56 kept
                    [0.3, 1.0, 1.0, 1.0]])     # token 0 dropped; Π = 0.3 dropped (< 0.6)
  mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1]], bool)
  old = np.full(ratio.shape, -2.0)
  behaviour = old - np.log(ratio)
  token = _weights(old, behaviour, mask, "token_mis")
  np.testing.assert_array_equal(token == 0, ~mask | np.array(
      [[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], bool))
  np.testing.assert_allclose(token[mask & (token > 0)], ratio[mask & (token > 0)], rtol=1e-5)
  seq = _weights(old, behaviour, mask, "seq_mis")
  np.testing.assert_allclose(seq[:, 0], [0.0, 0.95, 1.56, 0.0], rtol=1e-5)
  m = importance.mismatch_metrics(old, behaviour, mask, correction="seq_mis", lower=LOWER,
                                  upper=UPPER)
  assert float(m["mismatch/masked_frac"]) == pytest.approx(0.5)
  m = importance.mismatch_metrics(old, behaviour, mask, correction="token_mis", lower=LOWER,
                                  upper=UPPER)
  assert float(m["mismatch/masked_frac"]) == pytest.approx(4 / 15)


def test_sequence_ratios_are_taken_in_log_space():
  # 64 tokens with ρ_t = e^20 each: Π = e^1280 overflows fp32 (and fp64); in log space the
  # truncated weight is exactly C, the masked one 0, and a tiny ratio gives 0, not NaN.
  t = 64
  mask = np.ones((2, t), bool)
  old = np.zeros((2, t), np.float32)
  behaviour = np.stack([np.full(t, -25.0), np.full(t, 25.0)]).astype(np.float32)
  np.testing.assert_allclose(_weights(old, behaviour, mask, "seq_tis")[:, 0], [CAP, 0.0])
  np.testing.assert_array_equal(_weights(old, behaviour, mask, "seq_mis"), 0.0)
  np.testing.assert_allclose(_weights(old, behaviour, mask, "geometric")[:, 0],
                             [np.exp(20.0), np.exp(-20.0)], rtol=1e-5)


@pytest.mark.parametrize("correction", CORRECTIONS[1:])
def test_mismatch_metrics_match_numpy(correction):
  old, behaviour, mask = _batch(seed=1)
  old = old + 0.9 * (np.arange(old.shape[1]) % 3 == 0) * (np.arange(old.shape[0]) % 2 == 0)[
      :, None]                                                    # large ratios in rows 0, 2, 4
  w, kept, truncated, valid = np_units(old, behaviour, mask, correction)
  w = np.where(valid, w, 0.0)
  n = valid.sum()
  ratio = np.exp(old - behaviour)[mask]
  want = {"mismatch/kl": np.mean(ratio - 1 - np.log(ratio)),
          "mismatch/is_weight_mean": w[valid].mean(),
          "mismatch/is_weight_max": w[valid].max(),
          "mismatch/ess": w.sum() ** 2 / (n * (w ** 2).sum()),
          "mismatch/masked_frac": 1 - kept[valid].mean()}
  if correction in ("token_tis", "seq_tis"):
    want["mismatch/truncated_frac"] = truncated[valid].mean()
  got = importance.mismatch_metrics(
      _garbage(old, mask, np.nan), _garbage(behaviour, mask, 7.0), mask, correction=correction,
      cap=CAP, lower=LOWER, upper=UPPER)
  assert set(got) == set(want)
  for key, value in want.items():
    assert float(got[key]) == pytest.approx(value, rel=1e-4, abs=1e-6), key
  assert 0 < want["mismatch/ess"] < 1
  if correction in ("token_mis", "seq_mis"):
    assert 0 < want["mismatch/masked_frac"] < 1, "the test needs dropped units"
  if correction in ("token_tis", "seq_tis"):
    assert 0 < want["mismatch/truncated_frac"] < 1, "the test needs truncated units"


def test_mismatch_metrics_with_nothing_kept_are_zero_not_nan():
  mask = np.array([[True, True], [False, False]])
  old, behaviour = np.zeros((2, 2), np.float32), np.full((2, 2), -3.0, np.float32)
  m = importance.mismatch_metrics(old, behaviour, mask, correction="token_mis")
  assert {k: float(v) for k, v in m.items()} == pytest.approx(
      {"mismatch/kl": np.exp(3) - 4, "mismatch/is_weight_mean": 0.0,
       "mismatch/is_weight_max": 0.0, "mismatch/ess": 0.0, "mismatch/masked_frac": 1.0})


@pytest.mark.parametrize("correction", CORRECTIONS)
@pytest.mark.parametrize("loss", ["ppo", "pg", "gspo"])
def test_the_policy_term_multiplies_the_loss_by_a_detached_weight(correction, loss):
  old, behaviour, mask = _batch(seed=2)
  rng = np.random.default_rng(3)
  logp = (old + rng.normal(0, 0.1, old.shape)).astype(np.float32)
  adv = rng.normal(0, 1, old.shape[0]).astype(np.float32)
  term = Term("policy", tuple(sorted(dict(loss=loss, is_correction=correction, is_cap=CAP,
                                          is_lower=LOWER, is_upper=UPPER).items())))

  def per_token(lp, b):
    x = TokenInputs(lp, old.astype(np.float32), adv, mask, b, jnp.zeros(old.shape),
                    jnp.zeros(old.shape, jnp.int32))
    return term(x, rng=None)[0]

  base = POLICY_LOSSES.get(loss)(logp, old.astype(np.float32), adv, mask)[0]
  w = np_token_weights(old, behaviour, mask, correction)
  b32 = behaviour.astype(np.float32)
  np.testing.assert_allclose(per_token(logp, b32), np.asarray(base) * w, rtol=1e-4, atol=1e-6)
  # The weight scales the gradient but is not differentiated.
  g_logp = jax.grad(lambda lp: jnp.sum(per_token(lp, b32)))(logp)
  g_base = jax.grad(lambda lp: jnp.sum(POLICY_LOSSES.get(loss)(lp, old, adv, mask)[0]))(logp)
  np.testing.assert_allclose(g_logp, np.asarray(g_base) * w, rtol=1e-4, atol=1e-6)
  np.testing.assert_array_equal(jax.grad(lambda b: jnp.sum(per_token(logp, b)))(b32), 0.0)


def _objective(**settings):
  cfg = load_config("grpo:tiny").objective
  cfg.update(settings)
  return Objective(cfg)


def test_config_selects_the_correction_and_its_thresholds():
  spec = _objective(is_correction="seq_mis", is_lower=0.25, is_upper=4.0).loss_spec
  assert dict(spec.terms[0].hparams) == dict(loss="ppo", is_correction="seq_mis", is_cap=2.0,
                                             is_lower=0.25, is_upper=4.0)
  assert not any(k.startswith("is_") for k, _ in _objective().loss_spec.terms[0].hparams)


@pytest.mark.parametrize("settings, match", [
    (dict(is_correction="seq_tiss"),
     "unknown importance correction 'seq_tiss'; valid names: geometric, none, seq_mis, "
     "seq_tis, token_mis, token_tis"),
    (dict(is_correction="seq_tis", loss="kl_cov"), "weights a policy loss that takes it"),
    (dict(is_correction="token_tis", advantage="none"), "distillation only"),
    (dict(is_correction="token_mis", is_lower=3.0, is_upper=2.0), "0 < lower <= upper"),
    (dict(is_correction="seq_tis", is_cap=0.0), "cap > 0"),
    (dict(truncated_is=True), "replaced by objective.is_correction"),
])
def test_bad_corrections_fail_at_start_up_with_one_line(settings, match):
  with pytest.raises(ConfigError, match=match) as e:
    _objective(**settings)
  assert "\n" not in str(e.value)


def test_a_preference_loss_takes_no_correction():
  c = load_config("grpo:tiny")
  c.trainer, c.objective.is_correction = "preference", "token_tis"
  with pytest.raises(ConfigError, match="is_correction='token_tis'.*set it to 'none'") as e:
    build_components(c, None, embed=None)
  assert "\n" not in str(e.value)
