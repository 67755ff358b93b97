"""reasoning-gym datasets as task families, and mixtures of worlds."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("reasoning_gym")

from explore_rl.tasks import (  # noqa: E402
    DEGENERATE, Problem, family_counts, get_task, sample_problems, score_batch, task_of)
from explore_rl.tasks.curriculum import make_curriculum  # noqa: E402
from explore_rl.tasks.reasoning_gym import (  # noqa: E402
    Cache, extract_answer_text, perturbations, to_ascii)
from explore_rl.tasks.reasoning_gym_census import census  # noqa: E402

# Cheap datasets of different shapes: numbers, words, a multi-line grid, non-ASCII
# prompts, a dataset without a curriculum.
DATASETS = ["basic_arithmetic", "leg_counting", "spell_backward", "mini_sudoku",
            "complex_arithmetic", "gsm_symbolic"]


def test_unknown_dataset_lists_the_valid_ones():
  with pytest.raises(ValueError, match="valid names: .*countdown"):
    get_task("reasoning_gym", dataset="no_such_dataset")
  with pytest.raises(ValueError, match="given dataset="):
    get_task("reasoning_gym:countdown", dataset="leg_counting")


def test_datasets_without_a_reference_answer_are_refused():
  with pytest.raises(ValueError, match="no reference answer"):
    get_task("reasoning_gym:graph_color")


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_is_a_world(dataset):
  task = get_task(f"reasoning_gym:{dataset}")
  assert task.family == f"reasoning_gym:{dataset}"
  rng = np.random.default_rng(0)
  problems = sample_problems(task, seed=3, num=3, difficulty=0.5)
  responses, expected = [], []
  for p in problems:
    assert p.family == task.family and json.loads(json.dumps(dict(p.meta))) == dict(p.meta)
    assert p.prompt.endswith("<answer> and </answer>.") and p.solution not in p.prompt
    assert task.teacher_prompt(p).endswith("\n" + p.prompt) and p.solution in task.teacher_prompt(p)
    mistake = task.mistake(p, rng, p.solution)
    responses += [p.solution, mistake, "no tags"]
    expected += ["ok", "wrong", "malformed"]
    assert task.signature(p, p.solution) == task.extract_answer(p, p.solution) == p.answer
  triples = [p for p in problems for _ in range(3)]
  assert [s.status for s in task.score_many(triples, responses)] == expected


def test_difficulty_follows_the_curriculum():
  task = get_task("reasoning_gym:basic_arithmetic")
  terms = {}
  for d in (0.0, 1.0):
    problems = sample_problems(task, seed=1, num=20, difficulty=d)
    assert {p.difficulty for p in problems} == {d}
    terms[d] = np.mean([task.record(p)["metadata"]["num_terms"] for p in problems])
  assert terms[0.0] < terms[1.0]


def test_explicit_config_overrides_the_curriculum():
  task = get_task("reasoning_gym:countdown", config={"min_numbers": 4, "max_numbers": 4})
  for d in (0.0, 1.0):
    for p in sample_problems(task, seed=2, num=5, difficulty=d):
      assert len(task.record(p)["metadata"]["numbers"]) == 4


def test_max_prompt_chars_draws_only_prompts_that_fit():
  task = get_task("reasoning_gym:leg_counting", max_prompt_chars=260)
  assert all(len(p.prompt) <= 260 for p in sample_problems(task, seed=0, num=10))
  tight = get_task("reasoning_gym:leg_counting", max_prompt_chars=10, check_references=0)
  with pytest.raises(ValueError, match="max_prompt_chars"):
    sample_problems(tight, seed=0, num=1)


def test_partial_credit_passes_the_scorers_value():
  task = get_task("reasoning_gym:countdown", partial_credit=True)
  p = sample_problems(task, seed=0, num=1)[0]
  score = task.score(p, "<answer>1+1</answer>")  # well-formed, wrong numbers: 0.05
  assert score.status == "wrong" and 0.0 < score.reward < 1.0
  assert task.score(p, p.solution).reward == 1.0


@pytest.mark.parametrize("text,answer", [
    ("think <answer>1</answer> then <answer> 2 </answer>", "2"),
    ("<answer>\n1 2\n3 4\n</answer>", "1 2\n3 4"),
    ("<answer></answer>", None), ("<answer>open", None), ("close</answer>", None),
    ("<answer>" + "9" * 5000 + "</answer>", None),
])
def test_answer_extraction(text, answer):
  assert extract_answer_text(text) == answer


def test_numeric_answers_read_a_chat_reply_by_its_last_number():
  """A reply that never states its answer is malformed by default; with numeric_answers
  its last number is the answer, scored by the dataset's own scorer, and the chat
  instruction asks for a number."""
  strict = get_task("reasoning_gym:leg_counting")
  numeric = get_task("reasoning_gym:leg_counting", numeric_answers=True)
  assert not strict.math_answers and numeric.math_answers
  problem = dataclasses.replace(sample_problems(strict, seed=0, num=1)[0], chat=True)
  right = f"Each animal's legs, added up: {problem.answer}"
  wrong = f"Each animal's legs, added up: {int(problem.answer) + 1}"
  assert [s.status for s in strict.score_many([problem] * 2, [right, wrong])] == \
      ["malformed", "malformed"]
  assert [s.status for s in numeric.score_many([problem] * 2, [right, wrong])] == \
      ["ok", "wrong"]
  assert numeric.answer_form == "a number" and strict.answer_form != "a number"


def test_perturbations_are_distinct_near_misses():
  rng = np.random.default_rng(0)
  assert perturbations("12", rng) == ["13", "11", "14", "21", "1", "2", "122", "0"]
  assert perturbations("0", rng) == ["1", "-1", "2", "00"]
  assert perturbations("2.5", rng)[0] == "3.5"
  for answer in ("son", "aab", "x"):
    out = perturbations(answer, rng)
    assert answer not in out and len(set(out)) == len(out) and all(c.strip() for c in out)


def test_cache_keeps_the_most_recently_used_and_makes_each_value_once():
  cache, made = Cache(size=2), []
  make = lambda k: lambda: made.append(k) or k * 10  # noqa: E731
  assert [cache.get(k, make(k)) for k in (1, 2, 1, 3, 1, 2)] == [10, 20, 10, 30, 10, 20]
  assert made == [1, 2, 3, 2]  # 2 was the least recently used when 3 came


def test_to_ascii_fits_the_character_tokenizer():
  text = "3 \u00d7 4 \u2212 2 \u2264 x\u00b2, caf\u00e9 \U0001f600"
  assert to_ascii(text) == "3 * 4 - 2 <= x2, cafe ?"
  task = get_task("reasoning_gym:complex_arithmetic")
  assert all(p.prompt.isascii() for p in sample_problems(task, seed=0, num=10))


def test_mixture_serves_families_that_score_their_own_problems():
  curriculum = make_curriculum(
      "mixture", tasks={"countdown": 1.0, "reasoning_gym:countdown": 1.0,
                        "reasoning_gym:leg_counting": 2.0},
      task_kwargs={"reasoning_gym:leg_counting": {"max_prompt_chars": 400}}, seed=0)
  batch = curriculum.next_batch(24)
  families = {p.family for p in batch}
  assert families == {"countdown", "reasoning_gym:countdown", "reasoning_gym:leg_counting"}
  for p in batch:
    assert task_of(p) is curriculum.tasks_by_family[p.family]
  legs = curriculum.tasks_by_family["reasoning_gym:leg_counting"]
  assert legs.max_prompt_chars == 400  # the mixture's own instance, with its kwargs
  # One mixed batch: references score 1, junk 0, each with its own family's verifier.
  scores = score_batch(batch * 2, [p.solution for p in batch] + ["junk"] * len(batch))
  assert [s.reward for s in scores] == [1.0] * len(batch) + [0.0] * len(batch)
  assert task_of(batch[0]).signature(batch[0], "junk") == DEGENERATE
  rewards = np.array([s.reward for s in scores[:len(batch)]])
  counts = family_counts(batch, rewards)
  assert sum(c["count"] for c in counts.values()) == len(batch)
  assert all(c["pass_rate"] == 1.0 for c in counts.values())
  keep = curriculum.update(batch, rewards)
  assert keep.all() and curriculum.stats()["reasoning_gym:countdown/evaluated"] > 0


def test_score_batch_marks_truncation_and_uses_the_default_task():
  task = get_task("countdown")
  p = sample_problems(task, seed=0, num=1)[0]
  legacy = Problem(p.prompt, p.answer, p.solution, p.difficulty, p.meta)  # no family
  scores = score_batch([legacy, p], [p.solution, p.solution], [True, False], default_task=task)
  assert [s.status for s in scores] == ["truncated", "ok"]
  with pytest.raises(ValueError, match="default task"):
    task_of(legacy)


def test_census_tells_usable_datasets_from_refused_ones():
  results = census(["chain_sum", "boxnet"], num=2)
  assert results["chain_sum"] is None
  assert "no reference answer" in results["boxnet"]
