"""A toy task whose rewards vary even for an untrained tiny model.

The component matrix needs groups with unequal rewards from a random model, so
that every advantage estimator produces a non-zero signal and every update moves
the parameters. `first_letter`: a response starting with one of a..m earns
1 − (its index)/13 (so "a" earns 1, "m" 1/13: graded, so that estimators that only
reward a unique best sample see a signal too), anything else 0. The signature
(strategy) is the first character.
"""
import pytest

from explore_rl.tasks import TASKS
from explore_rl.tasks.base import MALFORMED, WRONG, Problem, Score, Task

FIRST_HALF = "abcdefghijklm"


class FirstLetter(Task):
  name = "first_letter"

  def sample(self, rng, difficulty=None):
    n = int(rng.integers(100))
    return Problem(prompt=f"say {n}:", answer="a", solution="a", difficulty=0.5, meta={},
                   family=self.name)

  def correct_responses(self, problem, rng, num):
    return list(FIRST_HALF[:num])

  def mistake(self, problem, rng, response):
    return "z" + response

  def parse(self, problem, response):
    return response[:1] if response else None

  def check(self, problem, parsed):
    return parsed in FIRST_HALF

  def parsed_answer(self, problem, parsed):
    return parsed

  def parsed_signature(self, problem, parsed):
    return parsed

  def score(self, problem, response, *, truncated=False):
    parsed = self.parse(problem, response)
    if parsed is None or truncated:
      return MALFORMED
    if not self.check(problem, parsed):
      return WRONG
    return Score(1.0 - FIRST_HALF.index(parsed) / len(FIRST_HALF), "ok")


if "first_letter" not in TASKS:
  TASKS.register("first_letter")(FirstLetter)


@pytest.fixture
def toy_task_name():
  return "first_letter"


@pytest.fixture(scope="session")
def toy_prior(tmp_path_factory):
  """A tiny SFT prior on `first_letter` (half of its demonstrations are mistakes), so
  that RL groups hold both rewards: the workdir, for `config.init_from`."""
  from explore_rl.config_files import load_config
  from explore_rl.training.sft import train_sft
  c = load_config("sft:tiny")
  c.task, c.max_prompt_len, c.max_response_len = "first_letter", 12, 6
  c.total_steps, c.eval_every, c.checkpoint_every = 40, 40, 40
  c.batch_size, c.demos_per_problem, c.mistake_rate = 16, 4, 0.5
  c.optim.learning_rate, c.optim.warmup_steps = 1e-2, 0
  workdir = str(tmp_path_factory.mktemp("toy_prior"))
  train_sft(c, workdir, progress=False)
  return workdir
