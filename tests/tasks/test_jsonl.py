"""JSONL datasets: loader errors with file:line, answer extraction and matching."""
import json
import pathlib
import re

import numpy as np
import pytest

from explore_rl.tasks import answers, get_task, sample_problems
from explore_rl.tasks.jsonl import JsonlFormatError, load_jsonl

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
GSM8K, MATH, MALFORMED = (str(FIXTURES / n) for n in ("gsm8k.jsonl", "math.jsonl",
                                                       "malformed.jsonl"))


def test_loads_gsm8k_and_math():
  gsm = load_jsonl(GSM8K)
  assert [r["answer"] for r in gsm] == ["27", "150", "15,000", "21", "-7"]
  assert gsm[0]["solution"].endswith("#### 27") and gsm[0]["source"] == f"{GSM8K}:1"
  math = load_jsonl(MATH)
  assert [r["answer"] for r in math] == ["\\frac{1}{2}", "(2, 3)", "2\\sqrt{2}", "120^\\circ",
                                         "4", "\\dfrac{1}{4}", "9"]
  # Level k -> (k - 1) / 4.
  assert [r["difficulty"] for r in math] == [0.0, 0.25, 0.5, 0.25, 0.0, 0.75, 1.0]
  assert math[5]["solution"] == "\\boxed{\\dfrac{1}{4}}"  # an answer-only line gets one


def test_malformed_lines_are_all_reported_with_file_and_line():
  with pytest.raises(JsonlFormatError) as info:
    load_jsonl([GSM8K, MALFORMED])
  errors = info.value.errors
  # Lines 1 and 9 of malformed.jsonl are fine; every other one is reported, none skipped.
  lines = (2, 3, 4, 5, 6, 7, 8, 10)
  assert [e.split(": ")[0] for e in errors] == [f"{MALFORMED}:{n}" for n in lines]
  assert "invalid JSON" in errors[0] and "JSON object" in errors[1] and "question" in errors[2]
  assert "neither" in errors[3] and "no final answer" in errors[4] and "blank" in errors[5]
  assert "level" in errors[6] and "disagrees" in errors[7]
  assert f"{MALFORMED}:2" in str(info.value)


def test_solution_without_a_stated_answer_gets_one(tmp_path):
  path = tmp_path / "plain.jsonl"
  path.write_text(json.dumps({"question": "6 * 7?", "answer": "42", "solution": "Six sevens."}))
  [record] = load_jsonl(path)
  assert record["solution"] == "Six sevens.\n#### 42"


def test_empty_file_is_an_error(tmp_path):
  (tmp_path / "empty.jsonl").write_text("")
  with pytest.raises(JsonlFormatError, match="no records"):
    load_jsonl(tmp_path / "empty.jsonl")


@pytest.mark.parametrize("a,b", [
    ("0.5", "1/2"), ("\\frac12", "\\dfrac{1}{2}"), ("$\\frac{1}{2}$.", "0.50"), ("1,000", "1000"),
    ("-\\frac{3}{6}", "-0.5"), ("(1, 2)", "(1,\\frac{4}{2})"), ("x = 5", "5"), ("90^\\circ", "90"),
    ("\\text{(A)}", "(A)"), ("50\\%", "50"), ("\\sqrt2", "\\sqrt{2}"), ("15,000", "15000.0"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
])
def test_equivalent(a, b):
  assert answers.equivalent(a, b) and answers.equivalent(b, a)


@pytest.mark.parametrize("a,b", [
    ("1/2", "1/3"), ("2\\sqrt{2}", "\\sqrt{8}"), ("(1,2)", "(2,1)"), ("12", "1,2"), ("", ""),
    ("1/0", "2/0"), ("5", "-5"), ("9" * 600, "9" * 600),
])
def test_not_equivalent(a, b):
  assert not answers.equivalent(a, b)


@pytest.mark.parametrize("text,final", [
    ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"), ("\\boxed{1} then \\boxed{{2}}", "{2}"),
    ("work\n#### 1,234\nmore", "1,234"), ("the answer is 42.", "42"), ("x \\boxed 7", "7"),
    ("\\boxed{}", None), ("\\boxed{{a}", None), ("no numbers", None), ("#### \n", None),
])
def test_extract_final_answer(text, final):
  assert answers.extract_final_answer(text) == final


def test_task_scores_and_signatures():
  task = get_task("jsonl", path=[GSM8K, MATH])
  problems = {p.answer: p for p in sample_problems(task, seed=0, num=200)}
  assert len(problems) == 12  # every record is reachable
  half, money = problems["\\frac{1}{2}"], problems["15,000"]
  assert task.score(half, "It is $\\boxed{0.5}$").status == "ok"
  assert task.score(half, "It is \\boxed{\\frac{2}{4}}").status == "ok"
  assert task.score(half, "It is \\boxed{\\frac{1}{3}}").status == "wrong"
  assert task.score(half, "I do not know").status == "malformed"
  assert task.score(money, "12 * 1250 = 15000\n#### 15000").status == "ok"
  assert task.score(money, "so 15000 dollars.").status == "ok"  # last number
  assert task.signature(half, "\\boxed{0.5}") == task.signature(half, "\\boxed{\\dfrac12}")
  assert task.extract_answer(money, "#### 15,000") == "15000"


def _sum_solver(problem):
  """A fixed simple solver: add up every integer in the question."""
  return str(sum(int(x) for x in re.findall(r"\d+", problem.prompt)))


def test_difficulty_selects_levels_and_lowers_simple_solver_success(tmp_path):
  # Level 1: sums (the solver is right); level 3: half sums, half differences;
  # level 5: products (the solver is wrong: a + b != a * b for these).
  lines = []
  for a, b in [(3, 4), (10, 5), (7, 8), (12, 30)]:
    lines.append({"question": f"What is {a} + {b}?", "answer": str(a + b), "level": 1})
    op, value = ("+", a + b) if a % 2 else ("-", a - b)
    lines.append({"question": f"What is {a} {op} {b}?", "answer": str(value), "level": 3})
    lines.append({"question": f"What is {a} * {b}?", "answer": str(a * b), "level": 5})
  path = tmp_path / "levels.jsonl"
  path.write_text("".join(json.dumps(x) + "\n" for x in lines))
  task = get_task("jsonl", path=str(path))
  rates = []
  for d in (0.0, 0.5, 1.0):
    problems = sample_problems(task, seed=1, num=60, difficulty=d)
    assert {p.difficulty for p in problems} == {d}
    scores = task.score_many(problems, [_sum_solver(p) for p in problems])  # one pool trip
    rates.append(np.mean([s.reward for s in scores]))
  assert rates[0] == 1.0 and rates[0] > rates[1] > rates[2] == 0.0, rates


def test_mistakes_change_the_final_answer():
  task = get_task("jsonl", path=[GSM8K, MATH])
  rng = np.random.default_rng(0)
  for p in sample_problems(task, seed=2, num=30):
    wrong = task.mistake(p, rng, p.solution)
    assert task.score(p, wrong).status == "wrong", (p.solution, wrong)


# -- math-verify rewards (in the sandboxed pool) ------------------------------------------------

def _one_record_task(tmp_path, answer):
  path = tmp_path / "one.jsonl"
  path.write_text(json.dumps({"question": "q?", "answer": answer}) + "\n")
  task = get_task("jsonl", path=str(path))
  return task, sample_problems(task, seed=0, num=1)[0]


@pytest.mark.parametrize("gold,response,status", [
    ("0.5", "so \\boxed{\\frac{1}{2}}", "ok"),
    ("\\frac{1}{2}", "#### 0.5", "ok"),
    ("42", "\\boxed{42}", "ok"),
    ("\\sqrt{8}", "\\boxed{2\\sqrt{2}}", "ok"),  # symbolic: beyond the normaliser
    ("42", "\\boxed{41}", "wrong"),
    ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}", "wrong"),
])
def test_math_verify_decides_the_reward(tmp_path, gold, response, status):
  task, problem = _one_record_task(tmp_path, gold)
  assert task.score(problem, response).status == status


def test_score_many_matches_score(tmp_path):
  task, problem = _one_record_task(tmp_path, "42")
  responses = ["\\boxed{42}", "\\boxed{41}", "no answer here", "#### 42.0", "9**9**9"]
  assert task.score_many([problem] * 5, responses) == [task.score(problem, r) for r in responses]


def test_long_response_is_scored_by_its_final_answer(tmp_path):
  task, problem = _one_record_task(tmp_path, "42")
  derivation = "We expand the product step by step. " * 150  # > MAX_RESPONSE_CHARS
  assert len(derivation) > 4096
  assert task.score(problem, derivation + "\\boxed{42}").status == "ok"
  assert task.score(problem, derivation + "\\boxed{41}").status == "wrong"
  assert task.extract_answer(problem, derivation + "\\boxed{42}") == "42"


# -- hostile dataset files: every bad line is a file:line error ---------------------------------

def _errors(tmp_path, data: bytes):
  path = tmp_path / "bad.jsonl"
  path.write_bytes(b'{"question": "fine", "answer": "1"}\n' + data + b"\n")
  with pytest.raises(JsonlFormatError) as info:
    load_jsonl(path)
  [error] = info.value.errors
  assert error.startswith(f"{path}:2: "), error
  return error


def test_invalid_utf8_is_a_line_error(tmp_path):
  assert "invalid UTF-8" in _errors(tmp_path, b'{"question": "caf\xe9?", "answer": "1"}')


@pytest.mark.parametrize("digits", [600, 5000, 100_000])
def test_huge_integers_are_line_errors(tmp_path, digits):
  line = b'{"question": "q", "answer": ' + b"7" * digits + b"}"
  assert "digits" in _errors(tmp_path, line)


def test_deep_nesting_is_a_line_error(tmp_path):
  line = b'{"question": "q", "answer": "1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
  assert "nested too deeply" in _errors(tmp_path, line)


@pytest.mark.parametrize("answer", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b'"nan"',
                                    b'"inf"', b'"-Infinity"'])
def test_non_finite_answers_are_rejected(tmp_path, answer):
  error = _errors(tmp_path, b'{"question": "q", "answer": ' + answer + b"}")
  assert "finite" in error or "NaN" in error


def test_record_whose_solution_matches_only_symbolically_loads(tmp_path):
  path = tmp_path / "sym.jsonl"
  path.write_text(json.dumps({"question": "Simplify sqrt(8).", "answer": "2\\sqrt{2}",
                              "solution": "so \\boxed{\\sqrt{8}}"}) + "\n")
  [record] = load_jsonl(path)  # the normaliser differs, math-verify agrees
  assert record["answer"] == "2\\sqrt{2}"
