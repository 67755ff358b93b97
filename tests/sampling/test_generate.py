"""The jitted sampler: greedy == step-by-step argmax, log-probs == full forward,
determinism, early stop on EOS, N samples share one prefill."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.models import transformer as tr
from explore_rl.models.tokenizer import pad_left
from explore_rl.sampling.generate import generate
from explore_rl.sampling.processors import SamplingConfig

EOS, PAD = 2, 0
forward = jax.jit(tr.forward, static_argnums=0)


@pytest.fixture(scope="module")
def prompts():
  rng = np.random.default_rng(1)
  tokens, valid = pad_left([rng.integers(3, 100, n).tolist() for n in (4, 1, 6)], PAD)
  return jnp.asarray(tokens), jnp.asarray(valid)


def _gen(model, prompts, rng, n=2, **cfg):
  graphdef, params = model
  cfg = SamplingConfig(**{"max_new_tokens": 8, **cfg})
  return generate(graphdef, params, *prompts, rng, num_samples=n, config=cfg, eos_id=EOS,
                  pad_id=PAD)


def test_greedy_equals_stepwise_argmax_of_full_forward(model, prompts):
  graphdef, params = model
  out = _gen(model, prompts, jax.random.key(0), n=1, temperature=0.0)
  tokens, valid = np.asarray(prompts[0]), np.asarray(prompts[1])
  for row in range(tokens.shape[0]):
    seq = tokens[row][valid[row]].tolist()
    for t in range(8):
      nxt = int(jnp.argmax(forward(graphdef, params, jnp.asarray([seq]))[0, -1]))
      assert int(out.tokens[row, t]) == nxt
      seq.append(nxt)
      if nxt == EOS:
        break


def test_logprobs_match_full_forward(model, prompts):
  graphdef, params = model
  out = _gen(model, prompts, jax.random.key(1), n=3, temperature=0.7, top_k=20)
  p = prompts[0].shape[1]
  seq = jnp.concatenate([jnp.repeat(prompts[0], 3, 0), out.tokens], 1)
  valid = jnp.concatenate([jnp.repeat(prompts[1], 3, 0), out.mask], 1)
  # the policy at the sampling temperature (what the learner trains), before top-k
  logp = jax.nn.log_softmax(forward(graphdef, params, seq, valid)[:, p - 1:-1] / 0.7)
  want = jnp.take_along_axis(logp, out.tokens[..., None], -1)[..., 0]
  m = np.asarray(out.mask)
  np.testing.assert_allclose(np.asarray(out.logprobs)[m], np.asarray(want)[m], atol=1e-5)
  # the sampling distribution (T = 0.7, top-20) differs from the policy
  assert not np.allclose(np.asarray(out.sample_logprobs)[m], np.asarray(out.logprobs)[m])
  assert (np.asarray(out.sample_logprobs)[~m] == 0).all()


def test_deterministic_for_a_key(model, prompts):
  a = _gen(model, prompts, jax.random.key(5))
  b = _gen(model, prompts, jax.random.key(5))
  c = _gen(model, prompts, jax.random.key(6))
  np.testing.assert_array_equal(a.tokens, b.tokens)
  assert not np.array_equal(a.tokens, c.tokens)
  # samples of one prompt differ from each other (rows b*N + j)
  assert not np.array_equal(a.tokens[0], a.tokens[1])


def test_stops_early_when_every_row_emitted_eos(model, prompts):
  # Make EOS overwhelmingly likely: a constant residual stream u and an lm_head
  # whose EOS column is aligned with it.
  graphdef, params = model
  params = jax.tree.map(lambda x: x, params)
  u = jnp.linspace(1.0, 2.0, 64)
  params["embed_tokens"]["embedding"] = jnp.broadcast_to(u, (128, 64))
  for layer in params["layers"].values():
    layer["self_attn"]["o_proj"]["kernel"] = jnp.zeros((64, 64))
    layer["mlp"]["down_proj"]["kernel"] = jnp.zeros((128, 64))
  params["lm_head"]["kernel"] = jnp.zeros((64, 128)).at[:, EOS].set(5 * u)
  out = generate(graphdef, params, *prompts, jax.random.key(0), num_samples=2,
                 config=SamplingConfig(max_new_tokens=50), eos_id=EOS, pad_id=PAD)
  assert int(out.steps) == 1
  tokens = np.asarray(out.tokens)
  assert (tokens[:, 0] == EOS).all() and (tokens[:, 1:] == PAD).all()
  assert np.asarray(out.lengths).tolist() == [1] * 6 and not np.asarray(out.truncated).any()


def test_mask_and_lengths_are_consistent(model, prompts):
  out = _gen(model, prompts, jax.random.key(2), n=4)
  m, toks = np.asarray(out.mask), np.asarray(out.tokens)
  assert m.shape == (12, 8)
  for row in range(12):
    n = int(out.lengths[row])
    assert m[row, :n].all() and not m[row, n:].any()
    assert (toks[row, n:] == PAD).all()
    assert bool(out.truncated[row]) == (EOS not in toks[row, :n].tolist())


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cache_buckets_equal_the_unbucketed_decode(model, prompts, temperature):
  # P = 6, 10 new tokens: bucket 4 decodes in segments of 8, 12 and 16 slots.
  graphdef, params = model
  cfg = SamplingConfig(temperature=temperature, max_new_tokens=10)
  outs = {c: generate(graphdef, params, *prompts, jax.random.key(4), num_samples=2, config=cfg,
                      eos_id=EOS, pad_id=PAD, cache_bucket=c) for c in (0, 4)}
  np.testing.assert_array_equal(outs[4].tokens, outs[0].tokens)
  for field in ("logprobs", "sample_logprobs", "entropy"):
    np.testing.assert_allclose(getattr(outs[4], field), getattr(outs[0], field), atol=1e-5)
  assert int(outs[4].steps) == int(outs[0].steps)
