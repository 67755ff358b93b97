"""Each sampler's `RolloutBatch.flops` against a hand count on a tiny shape
(docs/algorithms.md, "FLOPs"), and how samplers compare at equal N."""
import jax
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.models import sharding
from explore_rl.models.flops import forward_flops, matmul_weights, training_flops
from explore_rl.sampling import Policies, make_sampler
from explore_rl.sampling.generate import decode_flops
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.tasks import get_task
from explore_rl.training.policy_loader import fresh_policy

B, N, P, M = 2, 3, 20, 6


def hand(rows, tokens, context):
  """The tiny preset by hand: 2 layers, D = 64, 4 query heads and 2 kv heads of 16, MLP 128,
  the task tokenizer's 99 tokens. W = 2·(2·64·64 + 2·64·32 + 3·64·128) + 99·64 = 80064
  weights a token multiplies; 4·2·4·16 = 512 FLOPs per attended slot."""
  return rows * tokens * (2 * 80064 + 512 * context)


@pytest.fixture(scope="module")
def setup():
  c = load_config("grpo:tiny")
  policy = fresh_policy(c, sharding.make_mesh(dict(c.mesh)))   # random: long samples
  task = get_task("partition")
  problems = [task.sample(np.random.default_rng(i)) for i in range(B)]
  return policy, task, problems


def draw(setup, name, num_samples=N, policies=None, prompt_len=P, **kwargs):
  policy, task, problems = setup
  sampler = make_sampler(name, sampling=SamplingConfig(temperature=1.0, max_new_tokens=M),
                         prompt_len=prompt_len, task=task, **kwargs)
  batch = sampler(policies or Policies(policy), problems, jax.random.key(0),
                  num_samples=num_samples)
  return sampler, batch


def ran_to_the_end(batch, n):
  """Each of the n sample slots had a row without EOS: its decode ran all its steps."""
  return np.asarray(batch.truncated).reshape(B, n).any(axis=0).all()


def test_the_convention_on_the_tiny_preset(setup):
  config = setup[0].config
  assert matmul_weights(config) == 80064
  assert forward_flops(config, 3, 5, 40) == hand(3, 5, 40)
  assert training_flops(config, 3, 40) == 3 * hand(3, 40, 40)
  assert training_flops(config.replace(remat=True), 3, 40) == 4 * hand(3, 40, 40)


def test_decode_counts_the_steps_run_in_each_cache_segment(setup):
  config = setup[0].config
  lengths = [32, 40, 44]                          # P = 24, M = 20, buckets of 8 slots
  assert float(decode_flops(config, 5, 24, lengths, 20)) == pytest.approx(
      hand(5, 8, 32) + hand(5, 8, 40) + hand(5, 4, 44), rel=1e-6)
  assert float(decode_flops(config, 5, 24, lengths, 10)) == pytest.approx(
      hand(5, 8, 32) + hand(5, 2, 40), rel=1e-6)   # stopped early: all rows emitted EOS


def test_independent_prefills_each_prompt_once(setup):
  _, batch = draw(setup, "independent")
  assert ran_to_the_end(batch, N)
  # One prefill of B prompts over P slots; B·N rows x M steps over the P + M cache.
  assert float(batch.flops) == pytest.approx(hand(B, P, P) + hand(B * N, M, P + M), rel=1e-6)


def test_a_behaviour_policy_adds_the_trained_policys_scoring_pass(setup):
  policy = setup[0]
  instruction = "explore: "
  policies = Policies(policy, behaviour=policy, behaviour_instruction=instruction)
  _, batch = draw(setup, "independent", policies=policies)
  assert ran_to_the_end(batch, N)
  p = P + len(policy.tokenizer.encode(instruction))
  assert float(batch.flops) == pytest.approx(
      hand(B, p, p) + hand(B * N, M, p + M) + hand(B * N, P + M, P + M), rel=1e-6)


def history_len(sampler, tokenizer, m):
  """1 + H + (N - 1)·(m + S) + T + P slots of the sequential context."""
  h, s, t = (len(x) for x in sampler.pieces(tokenizer))
  return 1 + h + (N - 1) * (m + s) + t + P


def test_sequential_counts_every_history_prefill(setup):
  sampler, batch = draw(setup, "sequential")
  assert ran_to_the_end(batch, N)
  length = history_len(sampler, setup[0].tokenizer, M)
  assert length + M <= 128                        # one cache bucket
  per_sample = hand(B, length, length) + hand(B, M, length + M)
  score = hand(B * N, P + M, P + M)               # the trained policy on the plain prompt
  assert float(batch.flops) == pytest.approx(N * per_sample + score, rel=1e-6)


def test_sketch_counts_sketches_expansions_and_scoring(setup):
  s = 2
  sampler, batch = draw(setup, "sketch", sketch_len=s)
  assert ran_to_the_end(batch, N)
  length = history_len(sampler, setup[0].tokenizer, s)
  sketches = N * (hand(B, length, length) + hand(B, s, length + s))
  expansions = hand(B * N, P + s, P + s) + hand(B * N, M - s, P + M)
  assert float(batch.flops) == pytest.approx(
      sketches + expansions + hand(B * N, P + M, P + M), rel=1e-6)


def test_aggregated_counts_the_teachers_prefill_and_decode(setup):
  sampler, batch = draw(setup, "aggregated")
  assert ran_to_the_end(batch, N)
  p_t = sampler.teacher_prompt_len               # the default: prompt, solution, hint
  student = hand(B, P, P + M) + hand(B * N, M, P + M)       # caches of P + M slots
  teacher = hand(B, p_t, p_t + M) + hand(B * N, M, p_t + M)
  assert float(batch.flops) == pytest.approx(student + teacher, rel=1e-6)


@pytest.mark.parametrize("name,kwargs", [
    ("design_select", {"feature": "token_mean", "selector": "design"}),
    ("smooth_igw", {}),
])
def test_candidate_samplers_count_the_discarded_candidates(setup, name, kwargs):
  candidates = 5
  _, batch = draw(setup, name, candidates=candidates, **kwargs)
  assert np.asarray(batch.tokens).shape[0] == B * N
  assert float(batch.flops) == pytest.approx(
      hand(B, P, P) + hand(B * candidates, M, P + M), rel=1e-6)


def test_hindsight_counts_drafts_proposals_and_scoring(setup):
  policy = setup[0]
  sampler, batch = draw(setup, "hindsight", num_samples=4)    # 2 drafts + 2 proposals
  truncated = np.asarray(batch.truncated).reshape(B, 4)
  assert truncated[:, :2].any() and truncated[:, 2:].any()
  c = sampler.context_len(policy.tokenizer)
  assert c + M <= 128
  drafts = hand(B, P, P) + hand(B * 2, M, P + M)
  proposals = hand(B * 2, c, c) + hand(B * 2, M, c + M) + hand(B * 2, P + M, P + M)
  assert float(batch.flops) == pytest.approx(drafts + proposals, rel=1e-6)


def test_sequential_costs_more_and_aggregated_about_twice_independent(setup):
  independent = float(draw(setup, "independent")[1].flops)
  assert float(draw(setup, "sequential")[1].flops) > 2 * independent
  # Both models decode every step: twice, at equal prompt lengths (here both 96 slots;
  # a longer privileged prompt costs the teacher more).
  equal = float(draw(setup, "independent", prompt_len=96)[1].flops)
  aggregated = float(draw(setup, "aggregated", prompt_len=96, teacher_prompt_len=96)[1].flops)
  assert 1.9 < aggregated / equal < 2.2, aggregated / equal
