"""A researcher's own method in one file: an advantage, a loss term, a sampler and a task,
each registered by one decorator, trained with no edit inside explore_rl/ (the recipe of
docs/design.md, "Adding a component"; tests/training/test_own_components.py runs it).

Command:  explore-rl train --config tests/training/my_method.py --workdir runs/my_method
Hardware: 2 CPU cores. Runtime: about 15 s (one step on the tiny preset).
Expected: metrics.jsonl holds the loss term's `logprob_sq` and the sampler's
`my_sampler_calls`; the task's rewards are in `reward_mean`.
"""
import jax.numpy as jnp

from explore_rl.objectives import ADVANTAGES, LOSS_TERMS
from explore_rl.objectives.aggregation import masked_mean
from explore_rl.sampling import SAMPLERS
from explore_rl.sampling.samplers import IndependentSampler
from explore_rl.tasks import TASKS, Problem, Task
from explore_rl.training.rl_config import rl_config


@ADVANTAGES.register("centred", needs=("mask",), group_relative=True)
def centred(rewards, mask):
  """A_i = r_i − mean_G r over the valid samples: rewards, mask [..., N] -> [..., N]."""
  mask = mask.astype(jnp.float32)
  mean = (rewards * mask).sum(-1, keepdims=True) / jnp.maximum(mask.sum(-1, keepdims=True), 1)
  return (rewards - mean) * mask


@LOSS_TERMS.register("logprob_l2")
def logprob_l2(x, *, rng, coef: float):
  """coef·(log π(y_t))² per token: pulls sampled tokens' log-probs towards 0."""
  del rng
  square = jnp.where(x.mask, jnp.square(x.logprobs), 0.0)
  return coef * square, {"logprob_sq": masked_mean(square, x.mask)}


@SAMPLERS.register("my_sampler")
class CountingSampler(IndependentSampler):
  """The independent sampler, reporting how many rollouts it drew."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.calls = 0

  def __call__(self, *args, **kwargs):
    self.calls += 1
    return super().__call__(*args, **kwargs)

  def metrics(self) -> dict:
    return {"my_sampler_calls": self.calls}


@TASKS.register("echo_letter")
class EchoLetter(Task):
  """Repeat the letter of the prompt: 'say c:' is solved by a response starting with c."""
  name = "echo_letter"

  def sample(self, rng, difficulty=None):
    letter = "abcdefgh"[int(rng.integers(8))]
    return Problem(prompt=f"say {letter}:", answer=letter, solution=letter, difficulty=0.5,
                   meta={}, family=self.name)

  def correct_responses(self, problem, rng, num):
    return [problem.answer]

  def mistake(self, problem, rng, response):
    return "z" + response

  def parse(self, problem, response):
    return response[:1] or None

  def check(self, problem, parsed):
    return parsed == problem.answer

  def parsed_answer(self, problem, parsed):
    return parsed

  def parsed_signature(self, problem, parsed):
    return parsed


def get_config(arg=None):
  c = rl_config("tiny")
  c.total_steps = c.eval_every = c.checkpoint_every = 1
  c.task = "echo_letter"
  c.max_prompt_len, c.max_response_len = 12, 4
  c.rollout.sampler = "my_sampler"
  c.objective.advantage = "centred"
  c.objective.loss_terms = {"logprob_l2": {"coef": 0.01}}
  return c
