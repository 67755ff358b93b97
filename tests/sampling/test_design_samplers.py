"""The design_select and smooth_igw samplers (explore_rl/sampling/design_select.py): the kept rows are
the selector's choice on the candidates, the rollout is well formed, the policy log-probs are the
trained policy's, SmoothIGW's played rows follow its acceptance rule."""
import jax
import numpy as np
import pytest

from explore_rl.errors import ConfigError
from explore_rl.bandits.rollout_design import design_select, random_select, smooth_igw_draw
from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.models.logprobs import score_responses
from explore_rl.models.policy import Policy
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.sampling.design_select import (CandidateSampler, DesignSelectSampler, SmoothIGWSampler,
                                        features, mean_logprob)
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.catalog import make_sampler
from explore_rl.sampling.samplers import IndependentSampler, Policies
from explore_rl.tasks.base import MALFORMED, OK, WRONG, Problem, Task

L, P, CANDS, N = 6, 8, 6, 3
PROBLEMS = [Problem(prompt=f"q{i}:", answer="a", solution="a", difficulty=0.5, meta={})
            for i in range(2)]
SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=L)


@pytest.fixture(scope="module")
def policies():
  tok = CharTokenizer()
  cfg = get_preset("tiny", vocab_size=tok.vocab_size)
  graphdef, params = tr.init(cfg, seed=0)
  return Policies(trained=Policy(tok, cfg, graphdef, params))


@pytest.fixture(scope="module")
def candidates(policies):
  """The candidates, their φ and r̂, and the per-prompt seeds the samplers see for RNG."""
  k_cand, k_sel = jax.random.split(RNG)
  cands = IndependentSampler(sampling=SAMPLING, prompt_len=P)(policies, PROBLEMS, k_cand,
                                                              num_samples=CANDS)
  emb = policies.trained.params["embed_tokens"]["embedding"]
  phi = np.asarray(features(emb, cands.tokens, cands.mask), np.float64)
  r = np.asarray(mean_logprob(cands.policy_logprobs, cands.mask), np.float64)
  return (jax.device_get(cands), phi.reshape(len(PROBLEMS), CANDS, -1),
          r.reshape(len(PROBLEMS), CANDS), CandidateSampler.seeds(k_sel, len(PROBLEMS)))


RNG = jax.random.PRNGKey(3)


def _rows(batch):
  return jax.device_get(batch)


def _check(batch, policies, n):
  tok = policies.trained.tokenizer
  b = len(PROBLEMS)
  assert batch.prompt_tokens.shape == (b, P) and batch.num_samples == n
  for name in ("tokens", "mask", "behaviour_logprobs", "policy_logprobs", "entropy"):
    assert getattr(batch, name).shape == (b * n, L), name
  tokens, mask, lengths, truncated = map(np.asarray, (batch.tokens, batch.mask, batch.lengths,
                                                      batch.truncated))
  assert (mask == (np.arange(L)[None] < lengths[:, None])).all()
  for i in range(b * n):
    assert (tokens[i, lengths[i]:] == tok.pad_id).all()
    assert truncated[i] == (tok.eos_id not in tokens[i, :lengths[i]])
  lp, _ = score_responses(policies.trained.graphdef, policies.trained.params,
                          np.repeat(np.asarray(batch.prompt_tokens), n, 0),
                          np.repeat(np.asarray(batch.prompt_valid), n, 0), batch.tokens,
                          batch.mask, temperature=1.0)
  np.testing.assert_allclose(np.asarray(batch.policy_logprobs), np.asarray(lp), atol=1e-4)
  # The trained policy draws at T = 1 without top-k/p: behaviour = policy.
  np.testing.assert_allclose(np.asarray(batch.behaviour_logprobs), np.asarray(lp), atol=1e-4)
  assert (np.asarray(batch.policy_logprobs)[~mask] == 0).all()


def _expect(cands, picks):
  rows = (np.arange(len(PROBLEMS))[:, None] * CANDS + picks).reshape(-1)
  return cands.tokens[rows], cands.lengths[rows]


def test_features_and_estimates_are_the_masked_means():
  emb = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  tokens = np.array([[1, 2, 4, 0], [3, 3, 0, 0]], np.int32)
  mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0]], bool)
  phi = np.asarray(features(emb, tokens, mask))
  want = emb[[1, 2, 4]].mean(0)
  np.testing.assert_allclose(phi[0], want / np.linalg.norm(want), rtol=1e-5)
  np.testing.assert_allclose(phi[1], emb[3] / np.linalg.norm(emb[3]), rtol=1e-5)
  lp = np.array([[-1.0, -2.0, -3.0, -9.0], [-0.5, -7.0, 0.0, 0.0]], np.float32)
  np.testing.assert_allclose(np.asarray(mean_logprob(lp, mask)), [-2.0, -0.5])


@pytest.mark.parametrize("selector,select", [("design", design_select),
                                             ("random", random_select)])
def test_design_select_keeps_the_selectors_rows(selector, select, policies, candidates):
  cands, phi, r, seeds = candidates
  sampler = make_sampler("design_select", sampling=SAMPLING, prompt_len=P, candidates=CANDS,
                         selector=selector, feature="token_mean")
  assert isinstance(sampler, DesignSelectSampler)
  batch = _rows(sampler(policies, PROBLEMS, RNG, num_samples=N))
  picks = np.stack([select(phi[b], N, estimates=r[b], seed=int(seeds[b]))
                    for b in range(len(PROBLEMS))])
  assert all(len(set(p)) == N for p in picks)  # a set: N distinct candidates
  tokens, lengths = _expect(cands, picks)
  np.testing.assert_array_equal(batch.tokens, tokens)
  np.testing.assert_array_equal(batch.lengths, lengths)
  _check(batch, policies, N)
  m = sampler.metrics()
  np.testing.assert_allclose(m["design_select_estimate_kept"],
                             np.take_along_axis(r, picks, 1).mean(), rtol=1e-5)
  assert sampler.metrics() == {}


def test_judge_features_are_the_embedders_vectors_of_the_decoded_responses(policies,
                                                                         candidates):
  cands, _, r, seeds = candidates
  tok = policies.trained.tokenizer
  seen = []

  def embed(texts):   # a deterministic stand-in for MiniLM: unit vectors from the text
    seen.extend(texts)
    v = np.stack([np.random.default_rng(sum(map(ord, t)) + len(t)).normal(size=4)
                  for t in texts])
    return v / np.linalg.norm(v, axis=1, keepdims=True)

  sampler = make_sampler("design_select", sampling=SAMPLING, prompt_len=P, candidates=CANDS,
                         embed=embed)
  batch = _rows(sampler(policies, PROBLEMS, RNG, num_samples=N))
  texts = [tok.decode(t) for t in cands.tokens]
  assert seen == texts                      # every candidate, decoded, in row order
  phi = embed(texts).reshape(len(PROBLEMS), CANDS, -1)
  picks = np.stack([design_select(phi[b], N, estimates=r[b], seed=int(seeds[b]))
                    for b in range(len(PROBLEMS))])
  tokens, lengths = _expect(cands, picks)
  np.testing.assert_array_equal(batch.tokens, tokens)
  np.testing.assert_array_equal(batch.lengths, lengths)


def test_judge_features_without_an_embedder_fail_at_construction():
  with pytest.raises(ConfigError, match="embedder"):
    make_sampler("design_select", sampling=SAMPLING, prompt_len=P, candidates=CANDS)


def test_design_and_random_choose_differently_somewhere(candidates):
  _, phi, r, seeds = candidates
  design = [sorted(design_select(phi[b], N, estimates=r[b])) for b in range(len(PROBLEMS))]
  rand = [sorted(random_select(phi[b], N, seed=s)) for b, s in
          ((b, int(seeds[b]) + k) for b in range(len(PROBLEMS)) for k in range(5))]
  assert any(x not in design for x in rand)


def test_smooth_igw_plays_the_seeded_draws(policies, candidates):
  cands, _, r, seeds = candidates
  sampler = make_sampler("smooth_igw", sampling=SAMPLING, prompt_len=P, candidates=CANDS,
                         gamma=2.0, h=1.0)
  assert isinstance(sampler, SmoothIGWSampler)
  batch = _rows(sampler(policies, PROBLEMS, RNG, num_samples=N))
  picks = np.stack([smooth_igw_draw(r[b], gamma=2.0, h=1.0, seed=int(seeds[b]), num_draws=N)
                    for b in range(len(PROBLEMS))])
  tokens, _ = _expect(cands, picks)
  np.testing.assert_array_equal(batch.tokens, tokens)
  _check(batch, policies, N)


def test_smooth_igw_acceptance_follows_the_formula():
  """Per slot: proposal a ~ uniform, kept with probability 1 / (1 + hγ(r̂(â) − r̂(a))), else â.

  Over 4000 seeded slots the play frequencies match P(a) = p(a)/M (a ≠ â) and
  P(â) = 1/M + Σ_{a≠â} (1 − p(a))/M; at hγ → ∞ every slot plays â, at γ = 0 (p ≡ 1) every
  candidate is played.
  """
  sampler = SmoothIGWSampler(sampling=SAMPLING, prompt_len=P, candidates=4, gamma=3.0, h=0.5)
  r = np.array([-1.0, -0.2, -0.6, -2.0])
  accept = 1.0 / (1.0 + 0.5 * 3.0 * (r.max() - r))
  play = accept / 4
  play[1] += 1.0 - play.sum()
  draws = np.concatenate([sampler.choose(None, r, 100, seed) for seed in range(40)])
  freq = np.bincount(draws, minlength=4) / draws.size
  assert (np.abs(freq - play) <= 4 * np.sqrt(play * (1 - play) / draws.size)).all(), (freq, play)
  greedy = SmoothIGWSampler(sampling=SAMPLING, prompt_len=P, candidates=4, gamma=1e9)
  assert (greedy.choose(None, r, 50, 0) == 1).all()
  uniform = SmoothIGWSampler(sampling=SAMPLING, prompt_len=P, candidates=4, gamma=0.0)
  assert set(uniform.choose(None, r, 200, 0)) == {0, 1, 2, 3}


def test_bad_kwargs_are_config_errors():
  with pytest.raises(ConfigError, match="selector"):
    make_sampler("design_select", sampling=SAMPLING, prompt_len=P, selector="best",
                 feature="token_mean")
  with pytest.raises(ConfigError, match="feature"):
    make_sampler("design_select", sampling=SAMPLING, prompt_len=P, feature="hidden")
  with pytest.raises(ConfigError, match="estimate"):
    make_sampler("smooth_igw", sampling=SAMPLING, prompt_len=P, estimate="value")
  sampler = DesignSelectSampler(sampling=SAMPLING, prompt_len=P, candidates=3,
                                feature="token_mean")
  with pytest.raises(ValueError, match="candidates > rollout.num_samples"):
    sampler.choose(np.eye(3), np.zeros(3), 3, 0)


class Lowercase(Task):
  """Correct iff the response starts with a lower-case letter."""
  name = "lowercase_design_test"

  def sample(self, rng, difficulty=None):
    return PROBLEMS[0]

  def correct_responses(self, problem, rng, num):
    return ["a"] * num

  def mistake(self, problem, rng, response):
    return "Z" + response

  def parse(self, problem, response):
    return response[:1] or None

  def check(self, problem, parsed):
    return parsed.islower()

  def parsed_answer(self, problem, parsed):
    return parsed

  def parsed_signature(self, problem, parsed):
    return parsed

  def score(self, problem, response, *, truncated=False):
    parsed = self.parse(problem, response)
    return MALFORMED if parsed is None else (OK if self.check(problem, parsed) else WRONG)


def test_reward_estimate_is_the_verifiers(policies, candidates):
  """r̂ = the verifier's reward of each candidate (truncated ones score 0, as in training)."""
  cands, phi, _, seeds = candidates
  task = Lowercase()
  sampler = make_sampler("design_select", sampling=SAMPLING, prompt_len=P, task=task,
                         candidates=CANDS, estimate="reward", feature="token_mean")
  tok = policies.trained.tokenizer
  # The tiny random model rarely stops within L tokens: score the candidates as if complete
  # too, so the rewards vary.
  whole = cands._replace(truncated=np.zeros_like(cands.truncated))
  want = np.asarray([task.score(PROBLEMS[i // CANDS], tok.decode(t)).reward
                     for i, t in enumerate(cands.tokens)]).reshape(len(PROBLEMS), CANDS)
  assert 0 < want.mean() < 1, "all rewards equal: the check cannot tell estimates apart"
  np.testing.assert_array_equal(sampler.describe(policies, PROBLEMS, whole)[1], want)
  want = np.where(cands.truncated.reshape(want.shape), 0.0, want)
  np.testing.assert_array_equal(sampler.describe(policies, PROBLEMS, cands)[1], want)
  batch = _rows(sampler(policies, PROBLEMS, RNG, num_samples=N))
  picks = np.stack([design_select(phi[b], N, estimates=want[b], seed=int(seeds[b]))
                    for b in range(len(PROBLEMS))])
  np.testing.assert_array_equal(batch.tokens, _expect(cands, picks)[0])
