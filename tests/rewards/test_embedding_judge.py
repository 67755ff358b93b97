"""The `embedding` judge: paraphrases merge, different methods stay apart."""
import numpy as np
import pytest

from explore_rl.rewards.judges import cluster_groups, get_judge

RESPONSES = [
    "Add the numbers one by one: 3 + 4 = 7, then 7 + 6 = 13, then 13 + 8 = 21.",
    "Sum them: 3 + 4 + 6 + 8 = 21.",
    "",
    "Let x be the unknown; the equation 3x + 4 = 25 gives x = 7.",
    "Add the numbers one by one: 3 + 4 = 7, then 7 + 6 = 13, then 13 + 8 = 21.",
]


@pytest.fixture(scope="module")
def judge():
  return get_judge("embedding", threshold=0.7)


def test_paraphrases_merge_and_methods_separate(judge):
  ids = judge.cluster("Add 3, 4, 6 and 8.", RESPONSES)
  np.testing.assert_array_equal(ids, [0, 0, -1, 1, 0])
  strict = get_judge("embedding", threshold=0.99).cluster("p", RESPONSES)
  np.testing.assert_array_equal(strict, [0, 1, -1, 2, 0])  # Identical texts still merge.


def test_embed_exposes_unit_vectors_and_counts(judge):
  before = judge.metrics()
  e = judge.embed(RESPONSES[:2])
  assert e.shape == (2, 384) and e.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
  after = judge.metrics()
  assert after["embed_calls"] == before["embed_calls"] + 1
  assert after["texts_embedded"] == before["texts_embedded"] + 2


def test_batch_embeds_distinct_texts_once(judge):
  before = judge.metrics()["texts_embedded"]
  ids = cluster_groups(judge, ["p", "q"], [RESPONSES, RESPONSES[::-1]])
  assert judge.metrics()["texts_embedded"] == before + 3  # 3 distinct non-blank texts.
  np.testing.assert_array_equal(ids, [[0, 0, -1, 1, 0], [0, 1, -1, 0, 0]])


def test_bad_linkage_is_rejected_at_construction():
  with pytest.raises(ValueError, match="unknown linkage 'ward'"):
    get_judge("embedding", linkage="ward")
