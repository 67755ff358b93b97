"""The head a chunk at a time (`logprobs.head_logprobs`) equals the whole-logits
computation, in value and gradient, for chunks that do and do not divide the tokens;
the response-only head equals slicing the full forward's logits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.models import logprobs, transformer
from explore_rl.models.config import get_preset


def _batch(config, b=3, p=5, m=7, seed=0):
  rng = np.random.default_rng(seed)
  prompt = jnp.asarray(rng.integers(3, config.vocab_size, (b, p)), jnp.int32)
  prompt_valid = jnp.asarray(np.arange(p)[None] >= np.array([[0], [2], [4]])[:b])  # left pad
  response = jnp.asarray(rng.integers(3, config.vocab_size, (b, m)), jnp.int32)
  mask = jnp.asarray(np.arange(m)[None] < np.array([[7], [3], [1]])[:b])
  return prompt, prompt_valid, response, mask


def _whole(graphdef, params, prompt, prompt_valid, response, mask, temperature):
  """The reference: the full forward's logits over every slot, sliced, then reduced."""
  p = prompt.shape[1]
  tokens = jnp.concatenate([prompt, response], 1)
  valid = jnp.concatenate([prompt_valid, mask], 1)
  logits = transformer.forward(graphdef, params, tokens, valid)[:, p - 1:-1] / temperature
  return logprobs.logprobs_from_logits(logits, response, mask)


@pytest.mark.parametrize("matmul_dtype", [None, "bfloat16"])
@pytest.mark.parametrize("chunk", [1, 4, 21, 1024])   # 21 = all tokens; 4 leaves a remainder
def test_chunked_head_equals_whole_logits_value_and_gradient(chunk, matmul_dtype):
  config = get_preset("tiny", matmul_dtype=matmul_dtype)
  graphdef, params = transformer.init(config, seed=3)
  batch = _batch(config)
  temperature = 0.7

  def chunked(params):
    x = logprobs.response_hidden(graphdef, params, *batch)
    cfg, w = transformer.head(graphdef, params)
    return logprobs.head_logprobs(cfg, w, x, batch[2], batch[3], temperature=temperature,
                                  chunk=chunk)

  whole = lambda params: _whole(graphdef, params, *batch, temperature)
  tol = dict(rtol=1e-5, atol=1e-5) if matmul_dtype is None else dict(rtol=2e-3, atol=2e-3)
  for got, want in zip(jax.jit(chunked)(params), jax.jit(whole)(params)):
    np.testing.assert_allclose(got, want, **tol)
  # A loss using both outputs, so the gradient flows through the log-prob and the entropy.
  loss = lambda f: lambda params: sum(jnp.sum(o * c) for o, c in zip(f(params), (1.0, 0.3)))
  g_chunked = jax.jit(jax.grad(loss(chunked)))(params)
  g_whole = jax.jit(jax.grad(loss(whole)))(params)
  for a, b in zip(jax.tree.leaves(g_chunked), jax.tree.leaves(g_whole)):
    np.testing.assert_allclose(a, b, **tol)


def test_response_logprobs_and_logits_use_the_response_slots_only():
  config = get_preset("tiny")
  graphdef, params = transformer.init(config, seed=4)
  batch = _batch(config, seed=1)
  want_lp, want_ent = _whole(graphdef, params, *batch, 1.0)
  lp, ent = logprobs.response_logprobs(graphdef, params, *batch)
  np.testing.assert_allclose(lp, want_lp, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ent, want_ent, rtol=1e-5, atol=1e-5)
  logits = logprobs.response_logits(graphdef, params, *batch)
  assert logits.shape == (*batch[2].shape, config.vocab_size) and logits.dtype == jnp.float32
  np.testing.assert_allclose(logprobs.logprobs_from_logits(logits, batch[2], batch[3])[0],
                             want_lp, rtol=1e-5, atol=1e-5)


def test_chunked_head_keeps_one_chunk_of_logits_live():
  """XLA's planned temporaries of a forward + backward shrink with the chunk: the whole
  [tokens, V] logits are not kept for the backward pass."""
  config = get_preset("tiny", vocab_size=4096)
  graphdef, params = transformer.init(config, seed=0)
  x = jnp.ones((64, 7, config.hidden_size))                             # 448 tokens
  tokens = jnp.zeros(x.shape[:-1], jnp.int32)
  mask = jnp.ones(x.shape[:-1], bool)
  cfg, w = transformer.head(graphdef, params)

  def temp_bytes(chunk):
    f = lambda w, x: sum(jnp.sum(o) for o in logprobs.head_logprobs(cfg, w, x, tokens, mask,
                                                                      chunk=chunk))
    return jax.jit(jax.grad(f, argnums=(0, 1))).lower(w, x).compile() \
        .memory_analysis().temp_size_in_bytes

  whole_logits = x.shape[0] * x.shape[1] * config.vocab_size * 4        # 7.3 MB
  assert temp_bytes(x.shape[0] * x.shape[1]) > whole_logits
  assert temp_bytes(64) < whole_logits / 2
