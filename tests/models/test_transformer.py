"""The decoder: KV-cache decoding equals the full forward; config validation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from explore_rl.models import transformer as tr
from explore_rl.models.config import PRESETS, get_preset
from explore_rl.models.tokenizer import pad_left

CFGS = {
    "gqa_untied": get_preset("tiny"),
    "qwen_like": get_preset("tiny", attention_bias=True, tie_word_embeddings=True,
                            rope_theta=1e6, num_key_value_heads=1),
    "llama3_rope": get_preset("tiny", rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 16}),
}
forward = jax.jit(tr.forward, static_argnums=0)


@pytest.fixture(scope="module", params=sorted(CFGS))
def model(request):
  return tr.init(CFGS[request.param], seed=1)


@functools.partial(jax.jit, static_argnums=0)
def _call(graphdef, params, *args):
  return nnx.merge(graphdef, params)(*args)


def _cached_logits(graphdef, params, prompt, prompt_valid, cont):
  """Prefill the left-padded prompt, then feed `cont` one token at a time."""
  m = lambda *args: _call(graphdef, params, *args)
  graphdef_config = nnx.merge(graphdef, params).config
  b, p = prompt.shape
  s = p + cont.shape[1]
  cache = tr.KVCache.zeros(graphdef_config, b, s)
  mask = jnp.pad(tr.causal_mask(prompt_valid), ((0, 0), (0, 0), (0, s - p)))
  logits, cache = m(prompt, tr.positions_from_mask(prompt_valid), mask, cache, 0)
  out = [logits]
  key_valid = jnp.zeros((b, s), bool).at[:, :p].set(prompt_valid)
  pos = prompt_valid.sum(1)
  for t in range(cont.shape[1]):
    key_valid = key_valid.at[:, p + t].set(True)
    logits, cache = m(cont[:, t:t + 1], (pos + t)[:, None], key_valid[:, None], cache, p + t)
    out.append(logits)
  return jnp.concatenate(out, axis=1)


def assert_cached_decoding_matches_forward(graphdef, params, prompt, valid, cont, *, atol):
  """The logits of `prompt` (left-padded, `valid`) then `cont` decoded token by token
  through the KV cache equal the full forward's at every valid position; returns (the full
  forward's logits, the valid mask)."""
  cached = _cached_logits(graphdef, params, jnp.asarray(prompt), jnp.asarray(valid), cont)
  allvalid = np.concatenate([np.asarray(valid), np.ones(cont.shape, bool)], 1)
  full = forward(graphdef, params, jnp.concatenate([jnp.asarray(prompt), cont], 1),
                 jnp.asarray(allvalid))
  np.testing.assert_allclose(np.asarray(cached)[allvalid], np.asarray(full)[allvalid],
                             atol=atol, rtol=0)
  return full, allvalid


def test_kv_cache_matches_full_forward_with_ragged_prompts(model):
  graphdef, params = model
  rng = np.random.default_rng(0)
  prompts = [rng.integers(3, 100, n).tolist() for n in (5, 2, 7)]
  prompt, valid = pad_left(prompts, 0)
  cont = jnp.asarray(rng.integers(3, 100, (3, 6)), jnp.int32)
  full, allvalid = assert_cached_decoding_matches_forward(graphdef, params, prompt, valid,
                                                          cont, atol=1e-5)
  # Each row equals the same row run alone without padding: padding changes nothing.
  for i, pr in enumerate(prompts):
    alone = forward(graphdef, params, jnp.asarray([pr + cont[i].tolist()], jnp.int32))
    np.testing.assert_allclose(np.asarray(full)[i][allvalid[i]], np.asarray(alone)[0],
                               atol=1e-5, rtol=0)


def test_logits_are_fp32_for_bf16_models():
  cfg = get_preset("tiny", dtype="bfloat16", param_dtype="bfloat16")
  graphdef, params = tr.init(cfg)
  assert jax.tree.leaves(params)[0].dtype == jnp.bfloat16
  logits = forward(graphdef, params, jnp.ones((1, 4), jnp.int32))
  assert logits.dtype == jnp.float32 and np.isfinite(np.asarray(logits)).all()


def test_a_bf16_models_cache_holds_its_bf16_values_in_fp32_on_cpu_and_decodes_as_the_forward():
  """On XLA:CPU a bf16 cache is kept in fp32 (`cache_dtype`: a bf16 write converts the whole
  cache); the values stay the bf16 ones, and decoding still equals the full forward."""
  cfg = get_preset("tiny", dtype="bfloat16", param_dtype="bfloat16")
  graphdef, params = tr.init(cfg, seed=1)
  assert tr.cache_dtype(jnp.bfloat16) == jnp.float32 and tr.cache_dtype(jnp.float32) == jnp.float32
  rng = np.random.default_rng(0)
  prompt, valid = pad_left([rng.integers(3, 100, n).tolist() for n in (5, 2)], 0)
  prompt, valid = jnp.asarray(prompt), jnp.asarray(valid)
  cache = tr.KVCache.zeros(cfg, 2, prompt.shape[1])
  _, cache = _call(graphdef, params, prompt, tr.positions_from_mask(valid),
                   tr.causal_mask(valid), cache, 0)
  k = np.asarray(cache.k[0])
  assert k.dtype == np.float32 and np.abs(k).max() > 0
  np.testing.assert_array_equal(k, np.asarray(jnp.asarray(k).astype(jnp.bfloat16), np.float32))
  cont = jnp.asarray(rng.integers(3, 100, (2, 4)), jnp.int32)
  # bf16 activations: the cached path attends in fp32, the full forward in bf16
  assert_cached_decoding_matches_forward(graphdef, params, prompt, valid, cont, atol=0.05)


def test_param_count_and_presets():
  for name in ("tiny", "small"):
    cfg = get_preset(name)
    _, params = tr.abstract_init(cfg)
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()
  assert get_preset("tiny").num_params() < 1_000_000
  assert 1e6 < get_preset("small").num_params() < 10e6
  assert 80e6 < get_preset("base").num_params() < 150e6
  with pytest.raises(ValueError, match="valid names: .*tiny"):
    get_preset("huge")
  with pytest.raises(ValueError, match="multiple of"):
    get_preset("tiny", num_key_value_heads=3)
  assert {"tiny", "small", "base", "llama3-1b", "qwen2.5-0.5b"} <= set(PRESETS.names())


def test_rope_scaling_llama3_matches_reference_formula():
  # HF's _compute_llama3_parameters, written out per frequency in plain Python.
  import math
  cfg = CFGS["llama3_rope"]
  d = cfg.head_size
  got = np.asarray(tr.rope_frequencies(cfg))
  for i, f in enumerate(1.0 / (cfg.rope_theta ** (np.arange(0, d, 2) / d))):
    wl = 2 * math.pi / f
    if wl < 16 / 4.0:
      want = f
    elif wl > 16 / 1.0:
      want = f / 8.0
    else:
      s = (16 / wl - 1.0) / (4.0 - 1.0)
      want = (1 - s) * f / 8.0 + s * f
    assert got[i] == pytest.approx(want, rel=1e-6)
