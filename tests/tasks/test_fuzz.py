"""Fuzzing every verifier: no exception escapes and no call takes longer than 50 ms."""
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
  for call in (lambda: task.score(problem, response), lambda: task.signature(problem, response),
               lambda: task.extract_answer(problem, response)):
    start = time.perf_counter()
    call()
    assert time.perf_counter() - start < MAX_SECONDS, (task.name, response[:80])


def test_nasty_inputs(task):
  problem = sample_problems(task, seed=0, num=1)[0]
  for response in NASTY:
    _timed_calls(task, problem, response)
    assert task.score(problem, response).status in STATUSES


def test_random_inputs(task):
  problems = sample_problems(task, seed=0, num=4, difficulty=1.0)

  @hypothesis.settings(max_examples=40, deadline=None, derandomize=True)
  @hypothesis.given(st.sampled_from(problems), TEXT)
  def run(problem, response):
    _timed_calls(task, problem, response)
    score = task.score(problem, response)
    assert score.status in STATUSES and 0.0 <= score.reward <= 1.0

  run()
