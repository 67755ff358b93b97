"""Fuzzing every verifier: no exception escapes and no call takes longer than 50 ms.

Families that score in the sandboxed pool (`sandboxed = True`: third-party scorers in a
forked child) are bounded by their pool deadline instead; their in-process parts
(signature, extracted answer) keep the 50 ms bound.
"""
import time

import hypothesis
import hypothesis.strategies as st

from explore_rl.tasks import sample_problems
from explore_rl.tasks.base import STATUSES

MAX_SECONDS = 0.05
NASTY = [
    "9**9**9", "10^10^10", "9" * 5000, "(" * 3000 + "1" + ")" * 3000, "2*" * 2000 + "2",
    "1/0", "0/0", "(1-1)/(2-2)", "\\boxed{" * 500, "#### " + "9" * 5000, "1e999999",
    "99999999999999999999/0.0000000000000001", "\\frac{1}{0}", "-" * 4000 + "1",
    "1+" * 2000 + "1", "\\sqrt{" * 300 + "2" + "}" * 300, "\x00\x01\x7f", "nan", "inf",
]
TEXT = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    st.text(alphabet="0123456789+-*/^()=.,#\\{}boxedfrac x", max_size=400),
    st.sampled_from(NASTY),
    st.integers(1, 4000).map(lambda n: "(" * n + "7" + ")" * n),
    st.integers(1, 2000).map(lambda n: "9" * n + "**" + "9" * n),
)


def _timed_calls(task, problem, response):
  score_bound = task.limits["deadline_s"] + 1.0 if getattr(task, "sandboxed", False) \
      else MAX_SECONDS
  for call, bound in ((lambda: task.score(problem, response), score_bound),
                      (lambda: task.signature(problem, response), MAX_SECONDS),
                      (lambda: task.extract_answer(problem, response), MAX_SECONDS)):
    start = time.perf_counter()
    call()
    assert time.perf_counter() - start < bound, (task.name, response[:80])


def test_nasty_inputs(task):
  problem = sample_problems(task, seed=0, num=1)[0]
  task.score(problem, problem.solution)  # untimed: starts a sandboxed family's pool
  for response in NASTY:
    _timed_calls(task, problem, response)
    assert task.score(problem, response).status in STATUSES


def test_random_inputs(task):
  problems = sample_problems(task, seed=0, num=4, difficulty=1.0)
  task.score(problems[0], problems[0].solution)  # untimed: starts a sandboxed family's pool

  @hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
  @hypothesis.given(st.sampled_from(problems), TEXT)
  def run(problem, response):
    _timed_calls(task, problem, response)
    score = task.score(problem, response)
    assert score.status in STATUSES and 0.0 <= score.reward <= 1.0

  run()
