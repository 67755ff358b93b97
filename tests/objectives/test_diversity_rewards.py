"""DRA and EVOL-RL shaped rewards: hand-computed values, loop references, masks, per-prompt."""
import collections

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.objectives import reward_shaping
from explore_rl.objectives.catalog import REWARD_SHAPERS

SETTINGS = hypothesis.settings(max_examples=50, deadline=None)
N, D = 6, 3

_dra = jax.jit(reward_shaping.dra_rewards)
_evol = jax.jit(lambda ids, emb, mask=None: reward_shaping.evol_rewards(
    None, answer_ids=ids, embeddings=emb, mask=mask))


def _cos(a, b):
  na, nb = np.linalg.norm(a), np.linalg.norm(b)
  return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def loop_dra(rewards, emb, mask):
  out = list(rewards)
  for i in range(len(rewards)):
    if mask[i]:
      total = sum(max(_cos(emb[i], emb[j]), 0.0) for j in range(len(rewards))
                  if j != i and mask[j])
      out[i] = rewards[i] / (1 + total)
  return np.array(out)


def loop_evol(ids, emb, mask):
  """A plain-Python transcription of the EVOL-RL reference reward manager's rules."""
  n = len(ids)
  out = [0.0 if not mask[i] else -1.0 for i in range(n)]
  valid = [i for i in range(n) if mask[i] and ids[i] >= 0]
  if not valid:
    return np.array(out)
  label = collections.Counter(ids[i] for i in valid).most_common(1)[0][0]
  correct = {i for i in valid if ids[i] == label}
  sim = lambda i, j: min(max(_cos(emb[i], emb[j]), 0.0), 1.0)
  novelty = {}
  for i in valid:
    others = [j for j in valid if j != i]
    group = [j for j in others if (j in correct) == (i in correct)]
    pool = group or others  # the reference's fallback for a lone member
    mean = np.mean([sim(i, j) for j in pool]) if pool else 0.0
    top = max([sim(i, j) for j in others], default=0.0)
    novelty[i] = 1 - (0.5 * mean + 0.5 * top)
  for members, base in ((sorted(correct), 0.5), ([i for i in valid if i not in correct], -1.0)):
    if not members:
      continue
    u = [novelty[i] for i in members]
    lo, hi = min(u), max(u)
    for i in members:
      # Spreads under 1e-6 are rounding noise (identical embeddings): all equal.
      scaled = ((novelty[i] - lo) / (hi - lo) if hi - lo > 1e-6
                else (1.0 if len(members) == 1 else 0.5))
      out[i] = base + 0.5 * scaled
  return np.array(out)


@st.composite
def groups(draw):
  # Embeddings from a few directions so that ties and exact duplicates happen.
  dirs = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [-1, 0.2, 0.3], [0, 0, 0]], np.float32)
  emb = dirs[draw(st.lists(st.integers(0, 4), min_size=N, max_size=N))]
  ids = np.array(draw(st.lists(st.integers(-1, 2), min_size=N, max_size=N)), np.int32)
  rewards = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=N, max_size=N)),
                     np.float32)
  mask = np.array(draw(st.lists(st.booleans(), min_size=N, max_size=N)))
  return rewards, ids, emb, mask


@hypothesis.given(groups())
@SETTINGS
def test_dra_matches_loops(group):
  rewards, _, emb, mask = group
  np.testing.assert_allclose(_dra(rewards, emb, mask=mask), loop_dra(rewards, emb, mask),
                             atol=1e-6)


@hypothesis.given(groups())
@SETTINGS
def test_evol_matches_loops(group):
  _, ids, emb, mask = group
  np.testing.assert_allclose(_evol(ids, emb, mask=mask), loop_evol(ids, emb, mask), atol=1e-6)


def test_evol_matches_loops_gaussian_embeddings():
  # Continuous similarities: minmax values strictly inside (0, 1) pin the ½/½ weights.
  rng = np.random.default_rng(0)
  ids = rng.integers(-1, 2, (20, N))
  emb = rng.normal(size=(20, N, D)).astype(np.float32)
  got = _evol(ids, emb)
  for b in range(20):
    np.testing.assert_allclose(got[b], loop_evol(ids[b], emb[b], [True] * N), atol=1e-5)


def test_dra_golden():
  # cos(e0,e1) = 1, cos(e2, ·) = 0, cos(e0,e3) = −1 (clipped to 0):
  # R̃ = [1/(1+1), 1/(1+1), 1/1, 0.5/1].
  emb = jnp.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
  np.testing.assert_allclose(_dra(jnp.array([1.0, 1.0, 1.0, 0.5]), emb),
                             [0.5, 0.5, 1.0, 0.5], atol=1e-6)


def test_evol_golden():
  # Majority answer 3 -> 0, 1 correct; 2 wrong; 3 unparseable. cos: s01 = .6, s02 = 0, s12 = .8.
  # u0 = 1 − (.6 + .6)/2 = .4; u1 = 1 − (.6 + .8)/2 = .3. minmax: correct (1, 0); response 2
  # is alone among the wrong: 1 whatever its novelty.
  emb = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.7, 0.7]])
  np.testing.assert_allclose(_evol(jnp.array([3, 3, 5, -1]), emb), [1.0, 0.5, -0.5, -1.0],
                             atol=1e-6)
  # A tie in the vote goes to the answer seen first (2): responses 0 and 3 are correct.
  got = _evol(jnp.array([2, 1, 1, 2]), jnp.eye(4))
  np.testing.assert_array_equal(np.asarray(got) >= 0.5, [True, False, False, True])
  # Nothing parseable: −1 for all, no NaN.
  np.testing.assert_array_equal(_evol(jnp.full(4, -1), jnp.zeros((4, 2))), -1.0)


@pytest.mark.parametrize("name", ["dra", "evol"])
def test_per_prompt_padding_jit_and_vmap(name):
  rng = np.random.default_rng(0)
  emb = rng.normal(size=(2, N, D)).astype(np.float32)
  ids = rng.integers(-1, 3, (2, N))
  rewards = rng.random((2, N)).astype(np.float32)
  shaper = REWARD_SHAPERS.get(name)
  # The shapers' call form: shaper(rewards, **context), context by keyword.
  fn = jax.jit(lambda r, ids, emb, mask=None: shaper(
      r, **({"answer_ids": ids} if name == "evol" else {}), embeddings=emb, mask=mask))
  out = fn(rewards, ids, emb)
  # Another prompt's embeddings never enter a prompt's rewards.
  emb2 = emb.copy()
  emb2[1] = rng.normal(size=(N, D))
  np.testing.assert_allclose(fn(rewards, ids, emb2)[0], out[0], atol=1e-6)
  np.testing.assert_allclose(jax.vmap(fn)(rewards, ids, emb), out, atol=1e-6)
  # Padding == slicing: the last two of six masked out equals the first four alone.
  mask = np.arange(N) < 4
  padded = fn(rewards, ids, emb, np.broadcast_to(mask, (2, N)))
  np.testing.assert_allclose(padded[:, :4], fn(rewards[:, :4], ids[:, :4], emb[:, :4]),
                             atol=1e-6)
  assert np.all(np.isfinite(np.asarray(padded)))
