"""The contract every registered judge keeps (parametrised over JUDGES).

Each judge returns int32[N] ids numbered in order of first appearance, -1 for
empty responses, the same answer twice, and one cluster for identical responses.
"""
import numpy as np
import pytest

from explore_rl.rewards.judges import JUDGES, Judge, cluster_groups, get_judge
from explore_rl.tasks.base import DEGENERATE, DEGENERATE_ID

PROMPT = "Reach 24 from 3 4 6 8."
RESPONSES = [
    "Multiply 3 by 8 to get 24, then add 6 and subtract 4 and 2.",
    "",
    "Use the order of operations: (8 - 6 + 4) * 4 = 24.",
    "Multiply 3 by 8 to get 24, then add 6 and subtract 4 and 2.",
    "   \n",
    "I cannot solve this puzzle; let me just write a poem about the sea.",
]


def text_signatures(responses):
  """A stand-in task signature: the text itself, DEGENERATE when blank."""
  return [r if r.strip() else DEGENERATE for r in responses]


def make_signature(request):
  del request
  return get_judge("signature"), text_signatures


def make_embedding(request):
  del request
  return get_judge("embedding"), lambda responses: None


def make_lm_judge(request):
  # The local fake chat server clusters exact duplicates together (see conftest.py).
  server = request.getfixturevalue("chat_server")
  judge = get_judge("lm_judge", base_url=server.base_url, model="by-text", timeout_s=2.0)
  return judge, lambda responses: None


JUDGE_FACTORIES = {"signature": make_signature, "embedding": make_embedding,
                   "lm_judge": make_lm_judge}


@pytest.fixture(params=JUDGES.names())
def judge_and_signatures(request) -> tuple[Judge, object]:
  if request.param not in JUDGE_FACTORIES:
    pytest.fail(f"judge {request.param!r} has no contract-test factory; add one")
  return JUDGE_FACTORIES[request.param](request)


def assert_first_appearance(ids):
  seen = -1
  for i in ids[ids != DEGENERATE_ID]:
    assert 0 <= i <= seen + 1, ids
    seen = max(seen, i)


def test_contract(judge_and_signatures):
  judge, signatures = judge_and_signatures
  ids = judge.cluster(PROMPT, RESPONSES, signatures=signatures(RESPONSES))
  assert ids.dtype == np.int32 and ids.shape == (len(RESPONSES),)
  assert ids[1] == ids[4] == DEGENERATE_ID
  assert ids[0] == ids[3] == 0
  assert (ids[[0, 2, 3, 5]] >= 0).all()
  assert_first_appearance(ids)
  again = judge.cluster(PROMPT, RESPONSES, signatures=signatures(RESPONSES))
  np.testing.assert_array_equal(again, ids)
  assert isinstance(judge.metrics(), dict)


def test_contract_edge_groups(judge_and_signatures):
  judge, signatures = judge_and_signatures
  blank = ["", " ", "\n"]
  np.testing.assert_array_equal(judge.cluster(PROMPT, blank, signatures=signatures(blank)),
                                [DEGENERATE_ID] * 3)
  assert judge.cluster(PROMPT, [], signatures=[]).shape == (0,)


def test_contract_batched_rows_equal_single_calls(judge_and_signatures):
  judge, signatures = judge_and_signatures
  groups = [RESPONSES, RESPONSES[::-1]]
  ids = cluster_groups(judge, [PROMPT, PROMPT], groups,
                       signatures=[signatures(g) for g in groups])
  assert ids.dtype == np.int32 and ids.shape == (2, len(RESPONSES))
  for row, group in zip(ids, groups):
    np.testing.assert_array_equal(row, judge.cluster(PROMPT, group, signatures=signatures(group)))
