"""Training over a mixture of worlds: SFT demonstrations from each problem's own family,
per-family evaluation, and the scoring pool's counters in the RL metrics."""
from __future__ import annotations

import ml_collections
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.tasks import TASKS, get_task, task_of
from explore_rl.tasks.reasoning_gym import ReasoningGymTask

MIXTURE = {"tasks": {"arithmetic": 1.0, "countdown": 1.0}}


def _sft_mixture_config(**kwargs):
  c = load_config("sft:tiny")
  c.curriculum = "mixture"
  c.curriculum_kwargs = ml_collections.ConfigDict({**MIXTURE, **kwargs})
  c.max_prompt_len, c.max_response_len = 40, 40
  return c


def test_sft_batch_draws_each_family_with_its_own_demonstrations():
  from explore_rl.training.sft import sft_batch, sft_source
  from explore_rl.training.policy_loader import fresh_policy
  from explore_rl.models import sharding
  c = _sft_mixture_config()
  c.batch_size, c.demos_per_problem, c.mistake_rate = 64, 2, 0.0
  source = sft_source(c)
  assert set(source.tasks_by_family) == {"arithmetic", "countdown"}
  problems = source.draw(c.seed * 1_000_003 + 3, c.batch_size // c.demos_per_problem)
  assert {p.family for p in problems} == {"arithmetic", "countdown"}
  # Without mistakes every demonstration is correct for its own family, and (the
  # worlds having different answer formats) most are wrong for the other family.
  other = {"arithmetic": get_task("countdown"), "countdown": get_task("arithmetic")}
  rng = np.random.default_rng(0)
  own_ok, cross_ok = [], []
  for p in problems:
    for demo in task_of(p).demonstrations(p, rng, 2, mistake_rate=0.0):
      own_ok.append(task_of(p).score(p, demo).reward >= 1)
      cross_ok.append(other[p.family].score(p, demo).reward >= 1)
  assert all(own_ok) and np.mean(cross_ok) < 0.5
  policy = fresh_policy(c, sharding.make_mesh(dict(c.mesh)))
  batch = sft_batch(source, policy.tokenizer, c, 3)
  assert batch.response_mask.shape[0] == c.batch_size
  # The step's problems are those of draw(seed, step): the encoded prompts match.
  decoded = {policy.tokenizer.decode(np.asarray(t)[np.asarray(v)].tolist())
             for t, v in zip(batch.prompt_tokens, batch.prompt_valid)}
  assert decoded == {p.prompt for p in problems}


def test_sft_over_a_mixture_trains_and_evaluates_every_family(tmp_path):
  from explore_rl.training.sft import train_sft
  c = _sft_mixture_config(inner_kwargs={"difficulty": 0.2})
  c.eval.num_prompts = 4
  train_sft(c, str(tmp_path), progress=False)
  rows = read_metrics(str(tmp_path))
  assert [r["step"] for r in rows] == list(range(1, c.total_steps + 1))
  last = rows[-1]
  for family in ("arithmetic", "countdown"):
    assert 0.0 <= last[f"{family}/pass@1"] <= 1.0
    assert len(last[f"{family}/eval_num_correct"]) == 2  # an equal share of 4 prompts
  assert len(last["eval_num_correct"]) == 4


class BareAnswers(ReasoningGymTask):
  """A reasoning-gym family whose answer is the whole response (no <answer> tags), so
  an untrained model's finished responses reach the real scoring pool."""
  name = "rg_bare_answers"

  def parse(self, problem, response):
    return response.strip() or "?"


if "rg_bare_answers" not in TASKS:
  TASKS.register("rg_bare_answers")(BareAnswers)


def _rl_mixture_config(family):
  c = load_config("grpo:tiny")
  c.curriculum = "mixture"
  c.curriculum_kwargs = ml_collections.ConfigDict(
      {"tasks": {"arithmetic": 1.0, family: 1.0},
       "task_kwargs": {family: {"max_prompt_chars": 127}}})
  c.difficulty = 0.0                      # the held-out problems' (every family's) level
  c.max_prompt_len, c.max_response_len = 128, 24
  c.model_overrides = ml_collections.ConfigDict({"max_position_embeddings": 160})
  return c


def test_rl_on_a_mixture_with_a_sandboxed_family_logs_the_pool(tmp_path):
  from explore_rl.training.rl import train_rl
  family = "rg_bare_answers:chain_sum"
  c = _rl_mixture_config(family)
  train_rl(c, str(tmp_path), progress=False)
  rows = read_metrics(str(tmp_path))
  groups = c.rollout.prompts_per_step
  total_calls = 0
  for r in rows:
    n_rg = r[f"{family}/train_groups"]
    assert n_rg + r["arithmetic/train_groups"] == groups
    # One pool call per response of the sandboxed family that was not truncated.
    assert r["sandbox_calls"] <= n_rg * c.rollout.num_samples
    assert r["sandbox_calls"] == r["sandbox_ok"] + r["sandbox_timeout"] + r["sandbox_error"]
    assert r["sandbox_timeout"] == 0 and r["sandbox_error"] == 0
    total_calls += r["sandbox_calls"]
    assert r["sandbox_calls_total"] == total_calls
  assert total_calls > 0
  assert f"{family}/pass@1" in rows[-1] and "arithmetic/pass@1" in rows[-1]


def test_rl_stops_when_the_sandboxed_scorer_cannot_run(tmp_path, monkeypatch):
  # The scorer's module cannot be imported in the sandbox: every call of the family
  # fails, and the run stops with one line instead of learning from zero rewards.
  from explore_rl.sandbox import SandboxUnavailable
  from explore_rl.tasks import reasoning_gym
  from explore_rl.training.rl import train_rl
  broken = "explore_rl.tasks.no_such_scorer:sandbox_score"
  monkeypatch.setattr(reasoning_gym, "SANDBOX_FN", broken)
  with pytest.raises(SandboxUnavailable, match=rf"calls of {broken} failed \(first: scorer: "
                     r"ModuleNotFoundError.*\) and a known-correct answer of ") as e:
    train_rl(_rl_mixture_config("rg_bare_answers:chain_sum"), str(tmp_path), progress=False)
  assert "\n" not in str(e.value)
