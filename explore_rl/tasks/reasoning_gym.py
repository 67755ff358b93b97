"""`reasoning_gym`: any of reasoning-gym's procedural datasets as a task family.

  task="reasoning_gym", task_kwargs.dataset="countdown" (family "reasoning_gym:countdown")
  task_kwargs.config={...}: the dataset's config fields (reasoning-gym's `<Name>Config`)

reasoning-gym (0.1.25, the `worlds` extra) ships ~100 generators with scorers and
curricula. This family wraps one of them in the project's `Task` protocol:

- Prompt: the dataset's question, then one fixed answer-format line (`ANSWER_FORMAT`):
  the final answer goes between <answer> and </answer>. The last complete tag pair is
  the answer; a response without one is malformed. With `ascii_prompts` (default)
  non-ASCII characters are transliterated (x for multiplication signs, quotes, dashes)
  or replaced by "?", so the character tokenizer can encode every prompt. Questions
  run to hundreds of characters: set `max_prompt_len` accordingly, or pass
  `max_prompt_chars` to draw only problems whose prompt fits.
- Solution: "<answer>{reference answer}</answer>", which scores 1; the teacher prompt
  (privileged self-distillation) carries it. Datasets without a reference answer
  (boxnet, graph_color, propositional_logic, rubiks_cube, rush_hour: their scorers
  accept any valid answer) are refused at construction.
- Reward: the dataset's own `score_answer`, run in the sandboxed pool
  (explore_rl/sandbox): several scorers evaluate the answer (countdown's runs sympy's
  `parse_expr`, which executes code). A score >= 1 is correct (reward 1, "ok"); below
  is "wrong" with reward 0 (with `partial_credit`, the scorer's value: many scorers
  give 0.01-0.05 for a well-formed wrong answer); a timeout or crash is reward 0 with
  status "timeout" / "error". `score_many` scores a whole batch in one pool round trip.
- `numeric_answers` (datasets whose answers are numbers: chain_sum, leg_counting,
  letter_counting, ...): a chat reply that states no final answer is read by its last
  number, as the math families read theirs (`Task.math_answers`, tasks/chat.py), and the
  chat instruction asks for a number. Off: a reply needs a stated answer.
- Signature: the answer with whitespace collapsed. Free-form answers have no exact
  strategy structure: strategy clusters come from the embedding or LM judge.
- Difficulty d in [0, 1]: where reasoning-gym has a curriculum for the dataset, every
  attribute is set to level round(d * (levels - 1)) (0: the easiest level), then the
  explicit `config` fields override it. Without a curriculum (acre, gsm_symbolic,
  list_functions) d is recorded but changes nothing.
- Problems: problem k of a difficulty is item k % size of the dataset seeded
  (seed, k // size), as reasoning-gym's own `ReseedingDataset` does; `num_problems`
  distinct problems per difficulty. `Problem.meta` holds the dataset, curriculum
  levels, seed and index, so the record is rebuilt where it is scored.
- Demonstrations: the reference answer (one strategy) plus mistakes: the answer
  perturbed (a number off by one, two characters swapped, a character dropped), the
  first perturbation the scorer rejects.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import re
import string
import threading
import unicodedata
from typing import Any, Mapping, Sequence

import numpy as np

from explore_rl.sandbox import codec
from explore_rl.tasks.base import (
    MALFORMED, MAX_RESPONSE_CHARS, TRUNCATED, Problem, Score, Task)
from explore_rl.tasks.registry import sandbox_scores, scoring_pool

ANSWER_FORMAT = "Give your final answer between <answer> and </answer>."
OPEN, CLOSE = "<answer>", "</answer>"
MAX_ANSWER_CHARS = MAX_RESPONSE_CHARS  # grids run to thousands of characters
SANDBOX_FN = "explore_rl.tasks.reasoning_gym:sandbox_score"
WARM_FN = "explore_rl.tasks.reasoning_gym:warm_scorer"
_PRINTABLE = set(string.printable[:-5] + "\n")
_TRANSLIT = {
    "\u00d7": "*", "\u22c5": "*", "\u00b7": "*", "\u2217": "*", "\u00f7": "/", "\u2212": "-",
    "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2026": "...", "\u2264": "<=", "\u2265": ">=", "\u2260": "!=", "\u2192": "->",
    "\u2190": "<-", "\u221a": "sqrt", "\u03c0": "pi", "\u00b0": " degrees", "\t": " ",
    "\u00a0": " ", "\u2248": "~=", "\u221e": "infinity",
}
_INT = re.compile(r"-?\d{1,30}")
_FLOAT = re.compile(r"-?\d{0,30}\.\d{1,30}")


def extract_answer_text(response: str) -> str | None:
  """The text of the last complete <answer>...</answer> pair, stripped; None if none
  (or empty, or longer than MAX_ANSWER_CHARS). Linear time: two `rfind`s."""
  end = response.rfind(CLOSE)
  if end < 0:
    return None
  start = response.rfind(OPEN, 0, end)
  if start < 0:
    return None
  inner = response[start + len(OPEN):end].strip()
  return inner if inner and len(inner) <= MAX_ANSWER_CHARS else None


def normalize_answer(answer: str) -> str:
  """Whitespace runs collapsed to one space: the signature and the voted answer."""
  return " ".join(answer.split())


def to_ascii(text: str) -> str:
  """`text` in the character tokenizer's alphabet: transliterated, else "?"."""
  if set(text) <= _PRINTABLE:
    return text
  out = []
  for c in text.replace("\r\n", "\n"):
    if c in _PRINTABLE:
      out.append(c)
    elif c in _TRANSLIT:
      out.append(_TRANSLIT[c])
    else:
      plain = unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode()
      out.append(plain if plain and set(plain) <= _PRINTABLE else "?")
  return "".join(out)


def _rg():
  try:
    import reasoning_gym  # noqa: F401 - registers the datasets
    from reasoning_gym import factory
  except ImportError as e:
    raise ImportError("task 'reasoning_gym' needs the worlds extra: "
                      "pip install -c requirements.lock -e '.[worlds]'") from e
  return factory


def dataset_config(dataset: str, levels: Mapping[str, int], user_config: Mapping) -> dict:
  """The config fields (without seed and size) of `dataset` at curriculum `levels`, the
  explicit `user_config` fields on top. Built the same way in the trainer and in the
  sandbox, so only the (JSON) levels and user config travel to a child."""
  factory = _rg()
  user_config = codec.decode(user_config)
  if levels:
    curriculum = factory.create_curriculum(dataset)
    for name, level in levels.items():
      curriculum.set_attr_level(name, level)
    obj = curriculum.generate_configuration(defaults=dict(user_config))
    obj = dataclasses.replace(obj, **user_config)
  else:
    obj = factory.DATASETS[dataset][1](**user_config)
  fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
  for k in ("seed", "size"):
    fields.pop(k, None)
  return fields


# -- inside the sandbox -----------------------------------------------------------------------

_SCORERS: dict[str, Any] = {}


def _scorer(dataset: str, levels: Mapping, user_config: Mapping) -> Any:
  """A dataset instance of that config (its `score_answer` is the scorer), cached."""
  key = json.dumps([dataset, levels, user_config], sort_keys=True)
  if key not in _SCORERS:
    _SCORERS[key] = _rg().create_dataset(dataset, **dataset_config(dataset, levels, user_config))
  return _SCORERS[key]


def warm_scorer(dataset: str, levels: Mapping, user_config: Mapping) -> None:
  """Build the scorer in the fork server itself (trusted config) and score one of its own
  reference answers, so children inherit the scorer and its lazily built state (sympy's
  caches, compiled patterns) instead of building them on every call."""
  scorer = _scorer(dataset, levels, user_config)
  try:
    entry = scorer[0]
    if isinstance(entry.get("answer"), str):
      scorer.score_answer(entry["answer"], entry)
  except Exception:  # noqa: BLE001 - warming is an optimisation; scoring reports failures
    pass


def sandbox_score(dataset: str, levels: Mapping, user_config: Mapping, answer: str,
                  entry: Any = None, regen: Mapping | None = None) -> float:
  """reasoning-gym's score of `answer` for the record (runs in a confined child)."""
  scorer = _scorer(dataset, levels, user_config)
  if entry is None:
    record = _rg().create_dataset(dataset, **dataset_config(dataset, levels, user_config),
                                  seed=regen["seed"], size=regen["size"])[regen["index"]]
  else:
    record = codec.decode(entry)
  return float(scorer.score_answer(answer, record))


def self_check() -> float:
  """reasoning-gym's score of a chain_sum problem's own answer (the scoring pool's
  self-test: the library and its lazily imported modules work in a child)."""
  scorer = _scorer("chain_sum", {}, {})
  record = scorer[0]
  return float(scorer.score_answer(record["answer"], record))


# -- the task family ----------------------------------------------------------------------------

def perturbations(answer: str, rng: np.random.Generator) -> list[str]:
  """Near misses of `answer`, in order: a number off by 1, -1, 2 (a decimal: +1), up to
  three swaps of unequal neighbours, the first or last character dropped, the last
  doubled, the whole reversed, "0"; distinct, not blank, never `answer` itself."""
  out = []
  if _INT.fullmatch(answer):
    out += [str(int(answer) + d) for d in (1, -1, 2)]
  elif _FLOAT.fullmatch(answer):
    out.append(repr(float(answer) + 1.0))
  positions = [i for i in range(len(answer) - 1) if answer[i] != answer[i + 1]]
  for i in rng.permutation(positions)[:3].tolist():
    out.append(answer[:i] + answer[i + 1] + answer[i] + answer[i + 2:])
  if len(answer) > 1:
    out += [answer[:-1], answer[1:]]
  out += [answer + answer[-1], answer[::-1], "0"]
  return list(dict.fromkeys(c for c in out if c.strip() and c != answer))


class Cache:
  """A thread-safe map from keys to values made on first use, the least recently used
  dropped beyond `size` (None: unbounded). A value is made outside the lock (generation
  is slow); two threads missing the same key at once may both make it, and one is kept."""

  def __init__(self, size: int | None = None):
    self.size = size
    self._items: collections.OrderedDict = collections.OrderedDict()
    self._lock = threading.Lock()

  def get(self, key, make):
    with self._lock:
      if key in self._items:
        self._items.move_to_end(key)
        return self._items[key]
    value = make()
    with self._lock:
      self._items[key] = value
      while self.size is not None and len(self._items) > self.size:
        self._items.popitem(last=False)
    return value


class ReasoningGymTask(Task):
  """A reasoning-gym dataset; reward = its scorer, run in the sandbox (module docstring)."""

  name = "reasoning_gym"
  variant_arg = "dataset"
  default_difficulty = 0.0
  answer_form = "the answer alone, in the form the question asks for"
  sandboxed = True

  def __init__(self, dataset: str, config: Mapping | None = None, *, seed: int = 0,
               use_curriculum: bool = True, partial_credit: bool = False,
               ascii_prompts: bool = True, max_prompt_chars: int | None = None,
               num_problems: int = 100_000, deadline_s: float = 5.0, cpu_s: float = 3.0,
               memory_mb: int = 1024, check_references: int = 2,
               max_scorer_errors: float = 0.5, numeric_answers: bool = False):
    factory = _rg()
    if dataset not in factory.DATASETS:
      raise ValueError(f"unknown reasoning-gym dataset {dataset!r}; valid names: "
                       f"{', '.join(sorted(factory.DATASETS))}")
    self.dataset = dataset
    config = config.to_dict() if hasattr(config, "to_dict") else dict(config or {})
    self.size = int(config.pop("size", 500))
    config.pop("seed", None)  # problems are seeded per chunk (module docstring)
    self.user_config = config
    self._user_config_json = codec.encode(config)  # what travels to the sandbox
    self.seed, self.partial_credit = int(seed), bool(partial_credit)
    self.ascii_prompts, self.max_prompt_chars = bool(ascii_prompts), max_prompt_chars
    if numeric_answers:  # instance attributes over the class's (module docstring)
      self.math_answers, self.answer_form = True, "a number"
    self.num_problems = int(num_problems)
    # max_scorer_errors: the fraction of a batch's calls that may fail before the pool is
    # re-checked and a broken scorer stops the run (tasks/registry.py, sandbox_scores).
    self.limits = {"deadline_s": float(deadline_s), "cpu_s": float(cpu_s),
                   "memory_mb": int(memory_mb), "max_scorer_errors": float(max_scorer_errors)}
    self.curriculum_levels: dict[str, int] = {}
    if use_curriculum and factory.has_curriculum(dataset):
      curriculum = factory.create_curriculum(dataset)
      self.curriculum_levels = {n: len(a.levels) for n, a in curriculum.attributes.items()}
    self._configs = Cache()            # levels -> config fields
    self._datasets = Cache(size=256)   # (levels, seed) -> a generated dataset
    self._entries = Cache(size=8192)   # (levels, seed, index) -> its record
    self._check_references(check_references)

  @property
  def family(self) -> str:
    return f"{self.name}:{self.dataset}"

  # -- records -------------------------------------------------------------------------------
  def _levels(self, difficulty: float) -> dict[str, int]:
    return {n: int(round(difficulty * (k - 1))) for n, k in self.curriculum_levels.items()}

  def _config(self, levels: Mapping[str, int]) -> dict:
    """The dataset config at curriculum `levels`, then the explicit config fields."""
    return self._configs.get(json.dumps(levels, sort_keys=True), lambda: dataset_config(
        self.dataset, levels, self._user_config_json))

  def _dataset(self, levels: Mapping[str, int], seed: int):
    return self._datasets.get((json.dumps(levels, sort_keys=True), seed), lambda: _rg(
        ).create_dataset(self.dataset, **self._config(levels), seed=seed, size=self.size))

  def record(self, problem_or_meta: Problem | Mapping) -> dict:
    """The reasoning-gym record (question, answer, metadata) of a problem (or its meta)."""
    meta = problem_or_meta.meta if isinstance(problem_or_meta, Problem) else problem_or_meta
    key = (json.dumps(meta["levels"], sort_keys=True), meta["seed"], meta["index"])
    return self._entries.get(key, lambda: self._dataset(meta["levels"], meta["seed"])[
        meta["index"]])

  def _prompt(self, question: str) -> str:
    text = f"{question.rstrip()}\n{ANSWER_FORMAT}"
    return to_ascii(text) if self.ascii_prompts else text

  def score_in_process_unsafe(self, problem: Problem, answer: str) -> float:
    """The dataset's raw score of `answer`, computed in *this* process, unconfined.

    Only for trusted answers (the dataset's own reference answers), and for tests that
    show what the sandbox prevents: never call it on model output.
    """
    scorer = self._dataset(problem.meta["levels"], problem.meta["seed"])
    return float(scorer.score_answer(answer, self.record(problem)))

  def _check_references(self, num: int) -> None:
    """Refuse datasets whose reference answers do not score 1 through the answer format
    (trusted inputs: the dataset's own answers, scored in-process)."""
    rng = np.random.default_rng(12345)
    for _ in range(num):
      problem = self.sample(rng)
      answer = extract_answer_text(problem.solution)
      if answer is None or self.score_in_process_unsafe(problem, answer) < 1.0:
        raise ValueError(f"reasoning-gym dataset {self.dataset!r}: its reference answer "
                         f"{self.record(problem).get('answer')!r} does not score 1 as an "
                         "<answer> tag; it cannot serve as a world with demonstrations")

  # -- generation ----------------------------------------------------------------------------
  def sample(self, rng: np.random.Generator, difficulty: float | None = None) -> Problem:
    d = self.resolve_difficulty(difficulty)
    levels = self._levels(d)
    failure = None
    for _ in range(100):  # a draw whose generation fails (or too long a prompt) is redrawn
      k = int(rng.integers(self.num_problems))
      chunk, index = divmod(k, self.size)
      seed = (self.seed * 1_000_003 + chunk) % 2**32
      meta = {"dataset": self.dataset, "levels": levels, "seed": seed, "index": index}
      try:
        entry = self.record(meta)
      except Exception as e:  # noqa: BLE001 - some generators give up on unlucky seeds
        failure = f"generation failed: {e!r}"
        continue
      prompt = self._prompt(entry["question"])
      answer = entry.get("answer")
      if isinstance(answer, str) and len(answer) + len(OPEN + CLOSE) > MAX_RESPONSE_CHARS:
        failure = f"answers longer than the {MAX_RESPONSE_CHARS}-character response limit"
        continue
      if self.max_prompt_chars is None or len(prompt) <= self.max_prompt_chars:
        break
      failure = f"prompts longer than max_prompt_chars={self.max_prompt_chars}"
    else:
      raise ValueError(f"reasoning-gym {self.dataset!r} at difficulty {d}: no usable problem in "
                       f"100 draws ({failure})")
    if not isinstance(answer, str) or not answer.strip():
      raise ValueError(f"reasoning-gym dataset {self.dataset!r} gives no reference answer "
                       f"(got {answer!r}); it cannot serve as a world with demonstrations")
    answer = answer.strip()
    return Problem(prompt=prompt, answer=normalize_answer(answer),
                   solution=f"{OPEN}{answer}{CLOSE}", difficulty=d, meta=meta,
                   family=self.family)

  def correct_responses(self, problem: Problem, rng: np.random.Generator, num: int) -> list[str]:
    return [problem.solution]  # one reference answer: one signature

  def mistake(self, problem: Problem, rng: np.random.Generator, response: str) -> str:
    """The answer perturbed; the first candidate the scorer rejects (checked in the pool)."""
    answer = extract_answer_text(response) or extract_answer_text(problem.solution)
    candidates = perturbations(answer, rng)
    scores = self._sandbox_scores([problem] * len(candidates), candidates)
    wrong = [c for c, s in zip(candidates, scores) if s.status == "wrong"] or candidates
    start = response.rfind(OPEN, 0, max(response.rfind(CLOSE), 0))
    return f"{response[:max(start, 0)]}{OPEN}{wrong[0]}{CLOSE}"

  # -- parsing and scoring -------------------------------------------------------------------
  def question(self, problem: Problem) -> str:
    return problem.prompt.removesuffix(ANSWER_FORMAT).rstrip()

  def parse(self, problem: Problem, response: str) -> str | None:
    return extract_answer_text(response)

  def parse_final(self, problem: Problem, final: str) -> str | None:
    return final.strip() or None

  def check(self, problem: Problem, parsed: str) -> bool:
    return self._sandbox_scores([problem], [parsed])[0].status == "ok"

  def parsed_answer(self, problem: Problem, parsed: str) -> str:
    return normalize_answer(parsed)

  def parsed_signature(self, problem: Problem, parsed: str) -> str:
    return normalize_answer(parsed)

  def score(self, problem: Problem, response: str, *, truncated: bool = False) -> Score:
    return TRUNCATED if truncated else self.score_many([problem], [response])[0]

  def score_many(self, problems: Sequence[Problem], responses: Sequence[str]) -> list[Score]:
    """Scores of a batch: parsing here, every parsed answer scored in one pool round trip."""
    parsed = [self._parse(p, r) for p, r in zip(problems, responses, strict=True)]
    rows = [i for i, a in enumerate(parsed) if a is not None]
    scores = self._sandbox_scores([problems[i] for i in rows], [parsed[i] for i in rows])
    out = [MALFORMED] * len(problems)
    for i, s in zip(rows, scores):
      out[i] = s
    return out

  def _call_kwargs(self, problem: Problem, answer: str) -> dict:
    meta = problem.meta
    try:
      entry, regen = codec.encode(self.record(meta)), None
    except TypeError:  # a record holding objects: the child rebuilds it
      entry, regen = None, {"seed": meta["seed"], "size": self.size, "index": meta["index"]}
    return {"dataset": self.dataset, "levels": dict(meta["levels"]),
            "user_config": self._user_config_json, "answer": answer, "entry": entry,
            "regen": regen}

  def _sandbox_scores(self, problems: Sequence[Problem], answers: Sequence[str]) -> list[Score]:
    if not problems:
      return []
    pool = scoring_pool()
    calls = [self._call_kwargs(p, a) for p, a in zip(problems, answers)]
    for levels in {json.dumps(c["levels"], sort_keys=True) for c in calls}:
      pool.warm(WARM_FN, dataset=self.dataset, levels=json.loads(levels),
                user_config=self._user_config_json)
    reference = self._call_kwargs(problems[0], self._parse(problems[0], problems[0].solution))
    return sandbox_scores(SANDBOX_FN, calls, partial_credit=self.partial_credit,
                          reference=reference, **self.limits)
