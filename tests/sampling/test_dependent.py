"""Dependent samplers: what each sample's context holds, and which log-probs come back.

`sequential`: the context of sample k of prompt b is exactly
[BOS] instruction y_0 sep ... y_{k-1} sep suffix prompt_b (y_j the samples of prompt b
itself, EOS excluded), so it holds no other prompt's samples; its behaviour log-probs
are the teacher-forced log-probs in that context and its policy log-probs those of the
plain prompt. `sketch`: every response starts with its sketch (the sketches are the
sequential draw of `sketch_len` tokens), expansions are the continuation of
[prompt | sketch].
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.models import sharding
from explore_rl.models.logprobs import response_logprobs
from explore_rl.sampling import make_sampler
from explore_rl.sampling.dependent import SequentialSampler, SketchSampler, sequential_generate
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.samplers import Policies
from explore_rl.tasks import get_task
from explore_rl.training.policy_loader import fresh_policy

N, M, P = 4, 6, 24


@pytest.fixture(scope="module")
def setup():
  c = load_config("grpo:tiny")
  policy = fresh_policy(c, sharding.make_mesh(dict(c.mesh)))   # random: varied samples
  task = get_task("partition")
  problems = [task.sample(np.random.default_rng(i)) for i in range(3)]
  assert len({p.prompt for p in problems}) == 3
  return policy, problems


def _ids(tokens, valid):
  return np.asarray(tokens)[np.asarray(valid)].tolist()


def _own(tokens, mask, eos):
  """A sample's tokens as its successors see them: the response without its EOS."""
  return [t for t, m in zip(np.asarray(tokens).tolist(), np.asarray(mask).tolist())
          if m and t != eos]


def _teacher_forced(policy, ctx_tokens, ctx_valid, tokens, mask, temperature=1.0):
  lp, _ = response_logprobs(policy.graphdef, policy.params, jnp.asarray(ctx_tokens),
                            jnp.asarray(ctx_valid), jnp.asarray(tokens), jnp.asarray(mask),
                            temperature=temperature)
  return np.asarray(lp)


def test_sequential_context_holds_exactly_its_own_earlier_samples(setup):
  policy, problems = setup
  tok = policy.tokenizer
  sampler = SequentialSampler(sampling=SamplingConfig(max_new_tokens=M), prompt_len=P,
                              instruction="tried ", separator="; ", suffix="now: ")
  out = sampler.draw(Policies(policy), problems, jax.random.key(3), num_samples=N)
  prompt_tokens, prompt_valid = sampler.encode(Policies(policy), problems)
  enc = tok.encode
  samples = [[_own(out.tokens[b * N + k], out.mask[b * N + k], tok.eos_id) for k in range(N)]
             for b in range(len(problems))]
  assert any(samples[b][k] for b in range(3) for k in range(N))
  for b in range(len(problems)):
    prompt = _ids(prompt_tokens[b], prompt_valid[b])           # [BOS] + prompt text
    for k in range(N):
      row = b * N + k
      context = _ids(out.context_tokens[row], out.context_valid[row])
      expected = prompt if k == 0 else (
          [tok.bos_id] + enc("tried ") + sum((s + enc("; ") for s in samples[b][:k]), [])
          + enc("now: ") + prompt[1:])
      assert context == expected, (b, k)
      # Equality, token for token: prompt b's own samples < k and nothing else (no
      # other prompt's samples, no later samples of its own).
  # Behaviour log-probs: those of the context that drew each token (teacher-forced there).
  lp = _teacher_forced(policy, out.context_tokens, out.context_valid, out.tokens, out.mask)
  np.testing.assert_allclose(np.asarray(out.sample_logprobs), lp, atol=2e-4)


def test_sequential_rollout_policy_logprobs_are_the_plain_prompt(setup):
  policy, problems = setup
  sampler = make_sampler("sequential", sampling=SamplingConfig(max_new_tokens=M), prompt_len=P)
  batch = sampler(Policies(policy), problems, jax.random.key(4), num_samples=N)
  rep = lambda x: np.repeat(np.asarray(x), N, axis=0)
  lp = _teacher_forced(policy, rep(batch.prompt_tokens), rep(batch.prompt_valid), batch.tokens,
                       batch.mask)
  np.testing.assert_allclose(np.asarray(batch.policy_logprobs), lp, atol=2e-4)
  first = np.arange(len(problems)) * N                         # sample 0: drawn on the plain
  np.testing.assert_allclose(np.asarray(batch.behaviour_logprobs)[first], lp[first], atol=2e-4)
  later = np.setdiff1d(np.arange(len(problems) * N), first)    # later ones: other contexts
  diff = np.abs(np.asarray(batch.behaviour_logprobs) - lp)[later]
  assert diff.max() > 1e-3


def test_sketch_expansions_start_from_their_sketch(setup):
  policy, problems = setup
  tok = policy.tokenizer
  s = 3
  sampling = SamplingConfig(max_new_tokens=M + 4)
  sampler = SketchSampler(sampling=sampling, prompt_len=P, sketch_len=s)
  rng = jax.random.key(5)
  out = sampler.draw(Policies(policy), problems, rng, num_samples=N)
  # The sketches: the sequential sampler's draw of s tokens with the same key.
  tokens, valid = sampler.encode(Policies(policy), problems)
  sketches = sequential_generate(
      policy.graphdef, policy.params, tokens, valid, *sampler.pieces(tok),
      jax.random.split(rng)[0], num_samples=N,
      config=dataclasses.replace(sampling, max_new_tokens=s), eos_id=tok.eos_id,
      pad_id=tok.pad_id, bos_id=tok.bos_id)
  np.testing.assert_array_equal(np.asarray(out.tokens)[:, :s], np.asarray(sketches.tokens))
  np.testing.assert_array_equal(np.asarray(out.context_tokens),
                                np.asarray(sketches.context_tokens))
  np.testing.assert_allclose(np.asarray(out.sample_logprobs)[:, :s],
                             np.asarray(sketches.sample_logprobs), atol=1e-6)
  open_ = np.asarray(sketches.truncated)                        # no EOS within the sketch
  assert open_.any()
  mask = np.asarray(out.mask)
  assert not mask[~open_, s:].any(), "a finished sketch is the whole response"
  assert mask[open_, s].all(), "an open sketch is expanded"
  # Expansion tokens: drawn as the continuation of [prompt | sketch] (plain prompt, no
  # history), so their behaviour log-probs are the plain-prompt teacher-forced ones.
  rep = lambda x: np.repeat(np.asarray(x), N, axis=0)
  lp = _teacher_forced(policy, rep(tokens), rep(valid), out.tokens, out.mask)
  np.testing.assert_allclose(np.asarray(out.sample_logprobs)[:, s:] * mask[:, s:],
                             lp[:, s:] * mask[:, s:], atol=2e-4)


def test_sketch_len_is_checked():
  with pytest.raises(ValueError, match="sketch_len"):
    make_sampler("sketch", sampling=SamplingConfig(max_new_tokens=4), prompt_len=P,
                 sketch_len=4)
