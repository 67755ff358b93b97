"""Packed update batches (training/packing.py) give the padded computation's log-probs,
loss and gradients, with less padding."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.models.logprobs import packed_response_logprobs, response_logprobs
from explore_rl.training import packing
from explore_rl.training.objective import LossSpec
from explore_rl.training.update import RLBatch, rl_update
from explore_rl.training.state import init_state

P, M, R = 6, 9, 8


@pytest.fixture(scope="module")
def batch():
  """R padded rows: ragged left-padded prompts, ragged right-padded responses (one empty)."""
  rng = np.random.default_rng(0)
  p_len = rng.integers(1, P + 1, R)
  r_len = np.concatenate([[0, M], rng.integers(1, M, R - 2)])
  prompt = np.where(np.arange(P) >= P - p_len[:, None], rng.integers(3, 100, (R, P)), 0)
  response = np.where(np.arange(M) < r_len[:, None], rng.integers(3, 100, (R, M)), 0)
  return RLBatch(jnp.asarray(prompt, jnp.int32), jnp.asarray(np.arange(P) >= P - p_len[:, None]),
                 jnp.asarray(response, jnp.int32), jnp.asarray(np.arange(M) < r_len[:, None]),
                 jnp.asarray(rng.normal(-2, 0.3, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(-2, 0.3, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(0, 1, R), jnp.float32))


def _packed(batch, groups, row_len=24):
  p = packing.pack(batch.prompt_tokens, batch.prompt_valid, batch.response_tokens,
                   batch.response_mask, row_len=row_len, groups=groups, row_multiple=2)
  return batch._replace(**{f"packed_{k}": jnp.asarray(v) for k, v in p._asdict().items()}), p


def test_packed_logprobs_equal_padded(batch):
  graphdef, params = tr.init(get_preset("tiny"), seed=2)
  packed, p = _packed(batch, groups=1)
  padded = 1 - float(np.mean(np.concatenate([batch.prompt_valid, batch.response_mask], 1)))
  assert p.tokens.shape[0] % 2 == 0 and packing.padding_fraction(p) < padded
  want = response_logprobs(graphdef, params, batch.prompt_tokens, batch.prompt_valid,
                           batch.response_tokens, batch.response_mask, temperature=0.7)
  got = packed_response_logprobs(graphdef, params, packed.packed_tokens, packed.packed_segments,
                                 packed.packed_positions, packed.packed_index,
                                 batch.response_tokens, batch.response_mask, temperature=0.7)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


def test_packed_update_equals_padded_loss_and_gradients(batch):
  """One `rl_update` (2 micro-batches, KL to a reference, entropy bonus): same loss and
  gradients (an SGD step of rate 1: the parameter change is minus the gradient)."""
  graphdef, params = tr.init(get_preset("tiny"), seed=2)
  ref = jax.tree.map(lambda x: x * 0.9, params)
  opt = optax.sgd(1.0)
  spec = LossSpec(kl_coef=0.1, entropy_coef=0.01)
  packed, _ = _packed(batch, groups=2)
  out = {}
  for name, b in (("padded", batch), ("packed", packed)):
    state = init_state(jax.tree.map(jnp.copy, params), opt, 0)
    out[name] = rl_update(graphdef, opt, spec, state, ref, b, jax.random.key(1),
                          micro_batches=2, temperature=1.0)
  (s_pad, m_pad), (s_pack, m_pack) = out["padded"], out["packed"]
  for k in ("loss", "grad_norm", "entropy", "kl_ref"):
    np.testing.assert_allclose(m_pack[k], m_pad[k], rtol=1e-5, atol=1e-7, err_msg=k)
  grads = {k: jax.tree.map(jnp.subtract, params, s.params)
           for k, s in (("padded", s_pad), ("packed", s_pack))}
  assert m_pad["grad_norm"] > 0
  for a, b in zip(jax.tree.leaves(grads["packed"]), jax.tree.leaves(grads["padded"])):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-4)


def test_pack_keeps_micro_batches_apart_and_rejects_non_prefix_masks(batch):
  _, p = _packed(batch, groups=2)
  half = p.tokens.shape[0] // 2
  # the first micro-batch's rows hold exactly the first R/2 sequences' tokens
  n_first = int((np.asarray(batch.prompt_valid[:R // 2]).sum()
                 + np.asarray(batch.response_mask[:R // 2]).sum()))
  assert int((p.segments[:half] > 0).sum()) == n_first
  bad = np.asarray(batch.response_mask).copy()
  bad[1, 0] = False
  with pytest.raises(ValueError, match="prefixes"):
    packing.pack(batch.prompt_tokens, batch.prompt_valid, batch.response_tokens, bad,
                 row_len=24)
