"""The hindsight sampler (explore_rl/sampling/hindsight.py): well-formed rollouts, the
trained policy's log-probs on the proposed tokens, the proposer's in its hindsight context,
filtered behaviour cloning, metrics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.models.logprobs import score_responses
from explore_rl.models.policy import Policy
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.sampling.hindsight import HindsightSampler, result_text
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import Policies
from explore_rl.tasks.base import MALFORMED, OK, WRONG, Problem, Task
from explore_rl.tasks.registry import score_batch

M, P = 8, 10
GOOD = "abcdefghijklmnopqrstuvwxyz"


class Lowercase(Task):
  """Correct iff the response starts with a lower-case letter (frequent under a random model)."""
  name = "lowercase_test"

  def sample(self, rng, difficulty=None):
    return Problem(prompt=f"q{int(rng.integers(100))}:", answer="a", solution="a",
                   difficulty=0.5, meta={})

  def correct_responses(self, problem, rng, num):
    return list(GOOD[:num])

  def mistake(self, problem, rng, response):
    return "Z" + response

  def parse(self, problem, response):
    return response[:1] or None

  def check(self, problem, parsed):
    return parsed in GOOD

  def parsed_answer(self, problem, parsed):
    return parsed

  def parsed_signature(self, problem, parsed):
    return parsed

  def score(self, problem, response, *, truncated=False):
    parsed = self.parse(problem, response)
    return MALFORMED if parsed is None else (OK if self.check(problem, parsed) else WRONG)


TASK = Lowercase()
PROBLEMS = [TASK.sample(np.random.default_rng(i)) for i in range(3)]


def _policy(seed):
  tok = CharTokenizer()
  cfg = get_preset("tiny", vocab_size=tok.vocab_size)
  graphdef, params = tr.init(cfg, seed=seed)
  return Policy(tok, cfg, graphdef, params)


@pytest.fixture(scope="module")
def trained():
  return _policy(0)


@pytest.fixture(scope="module")
def teacher():
  return _policy(1)


def _sampler(**kwargs):
  return HindsightSampler(sampling=SamplingConfig(temperature=1.0, max_new_tokens=M),
                          prompt_len=P, task=TASK, **kwargs)


def _check_well_formed(batch, tok, n):
  b = len(PROBLEMS)
  assert batch.prompt_tokens.shape == (b, P) and batch.num_samples == n
  for name in ("tokens", "mask", "behaviour_logprobs", "policy_logprobs", "entropy"):
    assert getattr(batch, name).shape == (b * n, M), name
  tokens, lengths, truncated = map(np.asarray, (batch.tokens, batch.lengths, batch.truncated))
  live = np.arange(M)[None] < lengths[:, None]
  for i in range(b * n):
    assert (tokens[i, lengths[i]:] == tok.pad_id).all()
    assert truncated[i] == (tok.eos_id not in tokens[i, :lengths[i]])
    if not truncated[i]:
      assert tokens[i, lengths[i] - 1] == tok.eos_id
  assert np.isfinite(np.asarray(batch.behaviour_logprobs)).all()
  return live


def _draft_outcomes(batch, tok, n_d):
  """Rewards [B, N_d] and statuses of the batch's draft rows, as the sampler scored them."""
  n = batch.num_samples
  rows = [b * n + j for b in range(len(PROBLEMS)) for j in range(n_d)]
  host = jax.device_get(batch)
  responses = [tok.decode(host.tokens[r]) for r in rows]
  scores = score_batch([p for p in PROBLEMS for _ in range(n_d)], responses,
                       host.truncated[rows].tolist(), default_task=TASK)
  rewards = np.asarray([s.reward for s in scores]).reshape(len(PROBLEMS), n_d)
  return rows, rewards, [s.status for s in scores]


@pytest.mark.parametrize("proposer", ["policy", "teacher"])
def test_rollout_is_well_formed_with_the_trained_and_proposer_logprobs(trained, teacher,
                                                                      proposer):
  tok, n = trained.tokenizer, 6
  sampler = _sampler(proposal_frac=0.5, proposer=proposer)
  n_d, n_p = sampler.split(n)
  assert (n_d, n_p) == (3, 3)
  policies = Policies(trained, teacher=teacher)
  batch = sampler(policies, PROBLEMS, jax.random.key(0), num_samples=n)
  live = _check_well_formed(batch, tok, n)
  assert (np.asarray(batch.mask) == live).all()         # "is": every proposal is kept

  # policy log-probs: the trained policy on the plain prompt, for drafts and proposals
  prompt_rep = jnp.repeat(batch.prompt_tokens, n, 0), jnp.repeat(batch.prompt_valid, n, 0)
  lp, ent = score_responses(trained.graphdef, trained.params, *prompt_rep, batch.tokens,
                            batch.mask, temperature=1.0)
  np.testing.assert_allclose(batch.policy_logprobs, lp, atol=2e-4)
  np.testing.assert_allclose(batch.entropy, ent, atol=2e-4)

  # behaviour log-probs of the proposals: the proposer's in the hindsight context of the
  # draft it read (worst first)
  rows, rewards, statuses = _draft_outcomes(batch, tok, n_d)
  host = jax.device_get(batch)
  ctx, ctx_valid, read = sampler.contexts(tok, PROBLEMS, host.tokens[rows], host.lengths[rows],
                                          host.truncated[rows], rewards, statuses, n_p)
  for b in range(len(PROBLEMS)):
    np.testing.assert_array_equal(read[b], np.argsort(rewards[b], kind="stable")[:n_p])
  prop_rows = np.asarray([b * n + n_d + k for b in range(len(PROBLEMS)) for k in range(n_p)])
  who = teacher if proposer == "teacher" else trained
  mu, _ = score_responses(who.graphdef, who.params, jnp.asarray(ctx), jnp.asarray(ctx_valid),
                          batch.tokens[prop_rows], batch.mask[prop_rows], temperature=1.0)
  np.testing.assert_allclose(batch.behaviour_logprobs[prop_rows], mu, atol=2e-4)
  # drafts are the trained policy's own samples: behaviour = policy
  draft_rows = np.asarray(rows)
  np.testing.assert_allclose(batch.behaviour_logprobs[draft_rows],
                             batch.policy_logprobs[draft_rows], atol=2e-4)
  if proposer == "teacher":   # a proposer with other params draws the proposals off-policy
    assert not np.allclose(batch.behaviour_logprobs[prop_rows], lp[prop_rows], atol=1e-3)

  m = sampler.metrics()
  assert m["hindsight_proposals"] == len(PROBLEMS) * n_p
  assert 0 <= m["hindsight_success_rate"] <= 1 and 0 <= m["hindsight_improved_frac"] <= 1
  mask = np.asarray(batch.mask)
  assert m["hindsight_token_share"] == pytest.approx(mask[prop_rows].sum() / mask.sum())
  assert sampler.metrics() == {}                         # reset after reading


def test_context_text_reads_the_attempt_and_its_outcome(trained):
  tok = trained.tokenizer
  sampler = _sampler()
  draft = np.full((2, M), tok.pad_id, np.int32)
  draft[0, :3] = tok.encode("Xy") + [tok.eos_id]
  draft[1, :M] = tok.encode("abcdefgh")                   # truncated: no EOS
  ctx, valid, read = sampler.contexts(tok, PROBLEMS[:1], draft, np.asarray([3, M]),
                                      np.asarray([False, True]), np.asarray([[0.0, 1.0]]),
                                      ["wrong", "truncated"], 2)
  assert ctx.shape == (2, sampler.context_len(tok)) and read.tolist() == [[0, 1]]
  texts = [tok.decode(t[v]) for t, v in zip(ctx, valid)]
  assert texts[0] == f"attempt: Xy -> wrong, reward 0.00. a better solution: {PROBLEMS[0].prompt}"
  assert texts[1] == f"attempt: abcdefgh -> correct. a better solution: {PROBLEMS[0].prompt}"
  assert ctx[0, valid[0].argmax()] == tok.bos_id
  assert result_text(0.5, "ok") == "ok, reward 0.50"


def test_filter_mode_clones_only_successful_proposals(trained, monkeypatch):
  # A random model rarely stops within M tokens, and truncated responses score 0: this
  # verifier ignores truncation so that some proposals succeed.
  import explore_rl.sampling.hindsight as hindsight
  monkeypatch.setattr(hindsight, "score_batch", lambda problems, responses, truncated, **kw:
                      [TASK.score(p, r) for p, r in zip(problems, responses)])
  tok, n = trained.tokenizer, 8
  sampler = _sampler(proposal_frac=0.5, correction="filter")
  batch = sampler(Policies(trained), PROBLEMS, jax.random.key(3), num_samples=n)
  live = _check_well_formed(batch, tok, n)
  host = jax.device_get(batch)
  responses = [tok.decode(t) for t in host.tokens]
  ok = np.asarray([TASK.score(None, r).reward >= 1 for r in responses]).reshape(-1, n)
  kept_any = False
  for b in range(len(PROBLEMS)):
    for j in range(n):
      row = b * n + j
      if j < 4 or ok[b, j]:                              # drafts, successful proposals
        assert (host.mask[row] == live[row]).all()
        kept_any |= j >= 4
      else:                                              # failed proposals: out of the loss
        assert not host.mask[row].any()
      if j >= 4:                                         # no importance weight: μ = π
        np.testing.assert_array_equal(host.behaviour_logprobs[row], host.policy_logprobs[row])
  assert kept_any, "no successful proposal to check (change the seed)"
  assert sampler.metrics()["hindsight_success_rate"] == pytest.approx(ok[:, 4:].mean())


def test_settings_are_checked(trained):
  with pytest.raises(ValueError, match="num_samples >= 2"):
    _sampler().split(1)
  assert _sampler(proposal_frac=0.9).split(4) == (1, 3)
  assert _sampler(proposal_frac=0.1).split(4) == (3, 1)
  for bad in ({"correction": "q"}, {"proposer": "q"}, {"proposal_frac": 1.0}):
    with pytest.raises(ValueError):
      _sampler(**bad)
  with pytest.raises(ValueError, match="teacher_from"):
    _sampler(proposer="teacher")(Policies(trained), PROBLEMS, jax.random.key(0), num_samples=2)
