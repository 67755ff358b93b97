"""Logits processors on hand-built distributions, and sampling frequencies (chi-square)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from explore_rl.sampling.processors import (SamplingConfig, min_p_mask, process_logits,
                                            sample_token, top_k_mask, top_p_mask)

PROBS = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
LOGITS = jnp.log(jnp.asarray(PROBS))


def kept(logits):
  return np.isfinite(np.asarray(logits)).tolist()


def test_top_k():
  assert kept(top_k_mask(LOGITS, 2)) == [True, True, False, False, False]
  assert kept(top_k_mask(LOGITS, 0)) == [True] * 5   # disabled
  assert kept(top_k_mask(LOGITS, 9)) == [True] * 5


def test_top_p():
  # mass before each token (descending): 0, .5, .7, .85, .95
  assert kept(top_p_mask(LOGITS, 0.5)) == [True, False, False, False, False]
  assert kept(top_p_mask(LOGITS, 0.6)) == [True, True, False, False, False]
  assert kept(top_p_mask(LOGITS, 0.8)) == [True, True, True, False, False]
  assert kept(top_p_mask(LOGITS, 0.01)) == [True, False, False, False, False]
  # order-independent: permuting the vocabulary permutes the mask
  perm = np.array([3, 0, 4, 2, 1])
  unpermuted = np.array(kept(top_p_mask(LOGITS, 0.8)))
  assert kept(top_p_mask(LOGITS[perm], 0.8)) == unpermuted[perm].tolist()


def test_min_p():
  # threshold 0.25 * 0.5 = 0.125: keeps .5, .2, .15
  assert kept(min_p_mask(LOGITS, 0.25)) == [True, True, True, False, False]
  assert kept(min_p_mask(LOGITS, 1.0)) == [True, False, False, False, False]


def test_temperature_then_filters_compose():
  out = process_logits(LOGITS, SamplingConfig(temperature=0.5, top_k=3, min_p=0.3))
  # temperature 0.5 squares the probabilities: .25, .04, .0225, ... (renormalised), so
  # the runner-up has .04/.25 = 0.16 of the top's mass, below min_p = 0.3.
  assert kept(out) == [True, False, False, False, False]
  np.testing.assert_allclose(np.asarray(out)[0], np.log(0.5) / 0.5, rtol=1e-6)


@pytest.mark.parametrize("cfg, expected", [
    (SamplingConfig(), PROBS),
    (SamplingConfig(top_k=3), np.r_[PROBS[:3] / PROBS[:3].sum(), 0, 0]),
    (SamplingConfig(top_p=0.8), np.r_[PROBS[:3] / PROBS[:3].sum(), 0, 0]),
    (SamplingConfig(min_p=0.25), np.r_[PROBS[:3] / PROBS[:3].sum(), 0, 0]),
    (SamplingConfig(temperature=2.0), np.sqrt(PROBS) / np.sqrt(PROBS).sum()),
])
def test_sampling_frequencies_match_processed_distribution(cfg, expected):
  n = 20000
  logits = jnp.broadcast_to(LOGITS, (n, 5))
  tokens, logp = jax.jit(sample_token, static_argnums=2)(jax.random.key(0), logits, cfg)
  counts = np.bincount(np.asarray(tokens), minlength=5)
  support = expected > 0
  assert counts[~support].sum() == 0
  chi2 = stats.chisquare(counts[support], n * expected[support])
  assert chi2.pvalue > 1e-3, (counts, n * expected)
  # the returned log-prob is that of the processed distribution
  np.testing.assert_allclose(np.exp(np.asarray(logp)), expected[np.asarray(tokens)], rtol=1e-5)


def test_greedy():
  tokens, logp = sample_token(jax.random.key(0), LOGITS[None], SamplingConfig(temperature=0))
  assert tokens.tolist() == [0] and logp.tolist() == [0.0]
