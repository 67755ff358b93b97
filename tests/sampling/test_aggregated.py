"""Aggregated decoding: token frequencies match p* (chi-square), behaviour log-probs are the
teacher's / student's for `teacher` / `interp s=0`, policy log-probs are the student's, EOS stop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.models.tokenizer import pad_left
from explore_rl.objectives.distillation import aggregate_logits
from explore_rl.sampling.aggregated import AggregationConfig, aggregated_generate

EOS, PAD = 2, 0
forward = jax.jit(tr.forward, static_argnums=0)


@pytest.fixture(scope="module")
def prompts():
  """Student prompts [2, 6] and longer teacher prompts [2, 9] (the problem plus a 'solution')."""
  rng = np.random.default_rng(1)
  problems = [rng.integers(3, 100, n).tolist() for n in (4, 6)]
  solutions = [rng.integers(3, 100, n).tolist() for n in (3, 2)]
  student = pad_left(problems, PAD)
  teacher = pad_left([p + [7] + s for p, s in zip(problems, solutions)], PAD)
  return tuple(map(jnp.asarray, student)), tuple(map(jnp.asarray, teacher))


def _run(model, prompts, rng, n, teacher_params=None, **cfg):
  graphdef, params = model
  (st, sv), (tt, tv) = prompts
  return aggregated_generate(graphdef, params, st, sv, tt, tv, rng, num_samples=n,
                             config=AggregationConfig(**cfg), eos_id=EOS, pad_id=PAD,
                             teacher_params=teacher_params)


def _sharp(params, scale):
  """The same model with its logits scaled: a peaked next-token distribution."""
  params = jax.tree.map(lambda x: x, params)
  params["lm_head"]["kernel"] = scale * params["lm_head"]["kernel"]
  return params


def _scores(model, prompt_tokens, prompt_valid, tokens, mask, n, temperature=1.0):
  """Log-probs of `tokens` [B*N, M] and entropies under the full (uncached) forward."""
  graphdef, params = model
  p = prompt_tokens.shape[1]
  seq = jnp.concatenate([jnp.repeat(prompt_tokens, n, 0), tokens], 1)
  valid = jnp.concatenate([jnp.repeat(prompt_valid, n, 0), mask], 1)
  logp = jax.nn.log_softmax(forward(graphdef, params, seq, valid)[:, p - 1:-1] / temperature)
  lp = jnp.take_along_axis(logp, tokens[..., None], -1)[..., 0]
  return np.asarray(lp), np.asarray(-jnp.sum(jnp.exp(logp) * logp, -1))


@pytest.mark.parametrize("cfg", [dict(method="poe", alpha=1.0),
                                 dict(method="trust_region", kl_budget=0.3)])
def test_token_frequencies_match_the_aggregate(model, prompts, cfg):
  graphdef, params = model
  sharp = _sharp(params, 8.0)  # peaked, so that p* differs clearly from p_s and p_t
  n = 3000
  out = _run((graphdef, sharp), prompts, jax.random.key(0), n, max_new_tokens=1, **cfg)
  (st, sv), (tt, tv) = prompts
  z_s = forward(graphdef, sharp, st, sv)[:, -1]
  z_t = forward(graphdef, sharp, tt, tv)[:, -1]
  p_star = np.exp(np.asarray(aggregate_logits(z_s, z_t, **cfg), np.float64))      # [2, V]
  p_student = np.exp(np.asarray(jax.nn.log_softmax(z_s), np.float64))
  p_teacher = np.exp(np.asarray(jax.nn.log_softmax(z_t), np.float64))
  tokens = np.asarray(out.tokens)[:, 0].reshape(2, n)
  for b in range(2):
    counts = np.bincount(tokens[b], minlength=p_star.shape[1])
    for probs, should_fit in ((p_star[b], True), (p_student[b], False), (p_teacher[b], False)):
      expected = n * probs
      big = expected >= 5  # pool the rare tokens into one bin
      obs = np.append(counts[big], counts[~big].sum())
      exp = np.append(expected[big], expected[~big].sum())
      assert big.sum() >= 5
      pvalue = stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue
      if should_fit:
        assert pvalue > 1e-3, (b, pvalue)
      else:  # power: the student's and the teacher's own distributions are rejected
        assert pvalue < 1e-6, (b, pvalue)
  # behaviour log-probs are log p* of the drawn token; policy log-probs the student's
  rows = np.arange(2).repeat(n)
  first = np.asarray(out.tokens)[:, 0]
  np.testing.assert_allclose(np.asarray(out.sample_logprobs)[:, 0],
                             np.log(p_star[rows, first]), atol=1e-4)
  np.testing.assert_allclose(np.asarray(out.logprobs)[:, 0], np.log(p_student[rows, first]),
                             atol=1e-4)


def test_teacher_method_behaviour_logprobs_are_the_teachers(model, prompts):
  """A separate teacher param set; multi-step decoding through both KV caches, at T = 0.7."""
  graphdef, params = model
  _, teacher_params = tr.init(get_preset("tiny"), seed=11)
  out = _run(model, prompts, jax.random.key(1), 3, teacher_params=teacher_params,
             method="teacher", temperature=0.7, max_new_tokens=8)
  (st, sv), (tt, tv) = prompts
  m = np.asarray(out.mask)
  assert m.sum() > 20
  teacher_lp, _ = _scores((graphdef, teacher_params), tt, tv, out.tokens, out.mask, 3, 0.7)
  student_lp, student_ent = _scores(model, st, sv, out.tokens, out.mask, 3, 0.7)
  np.testing.assert_allclose(np.asarray(out.sample_logprobs)[m], teacher_lp[m], atol=1e-4)
  np.testing.assert_allclose(np.asarray(out.logprobs)[m], student_lp[m], atol=1e-4)
  np.testing.assert_allclose(np.asarray(out.entropy)[m], student_ent[m], atol=1e-4)
  assert np.abs(teacher_lp[m] - student_lp[m]).max() > 0.1  # the two models differ
  assert (np.asarray(out.sample_logprobs)[~m] == 0).all()


def test_interp_s0_behaviour_logprobs_are_the_students(model, prompts):
  out = _run(model, prompts, jax.random.key(2), 2, method="interp", s=0.0, max_new_tokens=8)
  (st, sv), (tt, tv) = prompts
  m = np.asarray(out.mask)
  student_lp, _ = _scores(model, st, sv, out.tokens, out.mask, 2)
  teacher_lp, _ = _scores(model, tt, tv, out.tokens, out.mask, 2)
  np.testing.assert_allclose(np.asarray(out.sample_logprobs)[m], student_lp[m], atol=1e-4)
  np.testing.assert_allclose(np.asarray(out.logprobs)[m], student_lp[m], atol=1e-4)
  assert np.abs(teacher_lp[m] - student_lp[m]).max() > 0.1  # the prompts matter


def test_eos_from_the_teacher_stops_decoding(model, prompts):
  """A teacher that always says EOS: with method `teacher` every row stops after one token;
  the rollout's policy log-prob is still the student's log-prob of EOS."""
  graphdef, params = model
  teacher = jax.tree.map(lambda x: x, params)
  u = jnp.linspace(1.0, 2.0, 64)
  teacher["embed_tokens"]["embedding"] = jnp.broadcast_to(u, (128, 64))
  for layer in teacher["layers"].values():
    layer["self_attn"]["o_proj"]["kernel"] = jnp.zeros((64, 64))
    layer["mlp"]["down_proj"]["kernel"] = jnp.zeros((128, 64))
  teacher["lm_head"]["kernel"] = jnp.zeros((64, 128)).at[:, EOS].set(5 * u)
  out = _run(model, prompts, jax.random.key(3), 2, teacher_params=teacher, method="teacher",
             max_new_tokens=10)
  assert int(out.steps) == 1
  tokens = np.asarray(out.tokens)
  assert (tokens[:, 0] == EOS).all() and (tokens[:, 1:] == PAD).all()
  assert np.asarray(out.lengths).tolist() == [1] * 4 and not np.asarray(out.truncated).any()
  (st, sv), _ = prompts
  z_s = jax.nn.log_softmax(forward(graphdef, params, st, sv)[:, -1])
  np.testing.assert_allclose(np.asarray(out.logprobs)[:, 0], np.repeat(z_s[:, EOS], 2),
                             atol=1e-5)


def test_deterministic_for_a_key_and_config_validation(model, prompts):
  a = _run(model, prompts, jax.random.key(5), 2, max_new_tokens=4)
  b = _run(model, prompts, jax.random.key(5), 2, max_new_tokens=4)
  np.testing.assert_array_equal(a.tokens, b.tokens)
  with pytest.raises(ValueError, match="poe.*interp.*trust_region.*teacher"):
    AggregationConfig(method="mean")
  hash(AggregationConfig())
