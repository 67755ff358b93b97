"""Chat-shaped problems: the prompt an instruct model reads, and the final answer of its reply."""
import jax
import numpy as np
import pytest

from explore_rl.models import chat_tokenizer, hf_export, transformer
from explore_rl.models.config import get_preset
from explore_rl.models.policy import Policy
from explore_rl.models.tokenizer import encode_prompts
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.rollout import chat_problems, sample_and_score
from explore_rl.sampling.samplers import IndependentSampler, Policies
from explore_rl.tasks import DEGENERATE, get_task, sample_problems
from explore_rl.tasks.chat import final_answer

BUILT_IN = {"partition", "countdown", "arithmetic", "grid_paths", "jsonl", "reasoning_gym"}

# ChatML's shape over the character tokenizer's specials.
TEMPLATE = ("{% for m in messages %}<bos>{{ m['role'] }}\n{{ m['content'] }}<eos>\n{% endfor %}"
            "{% if add_generation_prompt %}<bos>assistant\n{% endif %}")


@pytest.fixture(scope="module")
def chat_tok(tmp_path_factory):
  path = tmp_path_factory.mktemp("tok")
  hf_export.write_char_tokenizer(str(path))
  (path / "chat_template.jinja").write_text(TEMPLATE)
  return chat_tokenizer.CheckpointTokenizer(str(path), chat_prompts=None)


def test_a_template_turns_chat_prompts_on(chat_tok, tmp_path):
  assert chat_tok.chat_prompts
  hf_export.write_char_tokenizer(str(tmp_path))
  assert not chat_tokenizer.CheckpointTokenizer(str(tmp_path), chat_prompts=None).chat_prompts


def test_chat_prompt_equals_the_hand_rendered_string(chat_tok):
  task = get_task("arithmetic")
  problem = task.sample(np.random.default_rng(0), 0.0)           # e.g. "7+3="
  expr = problem.prompt[:-1]
  hand = (f"<bos>user\nWhat is {expr}?\n\nThink step by step, then write the final answer on "
          "the last line as '#### <answer>' (or in \\boxed{}). The final answer is a number."
          "<eos>\n<bos>assistant\n")
  (chat,) = chat_problems(chat_tok, task, [problem])
  assert chat.chat and chat.answer == problem.answer
  ours = encode_prompts(chat_tok, [chat.prompt], 200)
  expected = encode_prompts(_raw(chat_tok), [hand], 200)
  np.testing.assert_array_equal(ours[0], expected[0])
  np.testing.assert_array_equal(ours[1], expected[1])
  assert chat_problems(chat_tok, task, [chat]) == [chat]         # idempotent


def _raw(tok):
  """The same tokenizer without chat prompts (encodes text as it is)."""
  raw = chat_tokenizer.ChatTokenizer(tok._tok, {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>"},
                                     None, source="test")
  # The template writes BOS itself: the hand-rendered string gets none added.
  raw.bos_id = None
  return raw


def test_the_rollout_samples_and_scores_chat_problems(chat_tok):
  task = get_task("partition")
  graphdef, params = transformer.init(get_preset("tiny"), seed=0)
  policy = Policy(chat_tok, get_preset("tiny"), graphdef, params)
  problems = sample_problems(task, seed=0, num=2)
  out = sample_and_score(IndependentSampler(sampling=SamplingConfig(max_new_tokens=4),
                                            prompt_len=400),
                         Policies(policy), task, problems, num_samples=2, rng=jax.random.key(0))
  assert all(p.chat for p in out.problems)
  rendered = chat_tok.apply_chat_template([{"role": "user", "content": out.problems[0].prompt}])
  row = out.host.prompt_tokens[0][out.host.prompt_valid[0]]
  assert row.tolist() == _raw(chat_tok).encode(rendered)


@pytest.mark.parametrize("reply, expected", [
    ("So 3 + 4 = 7.\n#### 7", "7"),
    ("We get \\boxed{\\frac{1}{2}} in the end.", "\\frac{1}{2}"),
    ("**Answer:** 5+5+2", "5+5+2"),
    ("The answer is $42$.", "42"),
    ("The final answer is: **12**.", "12"),
    ("First 2, then 3.\nFinal Answer: RRDD", "RRDD"),
    ("<answer>x = 3</answer>", "x = 3"),
    ("####   ", None),
    ("No idea.", None),
])
def test_final_answer_golden_cases(reply, expected):
  assert final_answer(reply) == expected


def test_numeric_final_answer_falls_back_to_the_last_number():
  assert final_answer("3 apples and 4 pears make 7") is None
  assert final_answer("3 apples and 4 pears make 7", numeric=True) == "7"


def _reply(task, problem) -> str:
  """A chat reply that ends in the reference answer, in the family's final-answer form."""
  if task.math_answers:
    return f"Let me work it out step by step.\n\n**Final answer:** {problem.answer}"
  if task.name == "reasoning_gym":
    return f"Reasoning first.\n\\boxed{{{problem.answer}}}"
  return f"Here is my reasoning.\n#### {problem.solution}"


def test_every_family_scores_chat_replies_by_their_final_answer(task, chat_tok):
  if task.name not in BUILT_IN:
    pytest.skip(f"{task.name} is a test family")
  problems = chat_problems(chat_tok, task, sample_problems(task, seed=5, num=3))
  for p in problems:
    reply = _reply(task, p)
    assert task.score(p, reply).status == "ok", (p, reply)
    assert task.signature(p, reply) != DEGENERATE
    assert task.extract_answer(p, reply) is not None
    assert task.score(p, "I am not sure.").status == "malformed"
