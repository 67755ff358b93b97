"""Cluster-id numbering shared by the judges, and the batched `cluster_groups`."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explore_rl.rewards.clusters import first_appearance_ids, is_blank, singleton_ids
from explore_rl.rewards.judges import cluster_groups, get_judge


def test_first_appearance_ids_golden():
  # keys b a b c with the 3rd flagged degenerate: b -> 0, a -> 1, (deg) -> -1, c -> 2.
  ids = first_appearance_ids(["b", "a", "b", "c"], [False, False, True, False])
  np.testing.assert_array_equal(ids, [0, 1, -1, 2])
  assert ids.dtype == np.int32


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=12))
def test_first_appearance_ids_matches_key_equality(pairs):
  keys = [k for k, _ in pairs]
  bad = [b for _, b in pairs]
  ids = first_appearance_ids(keys, bad)
  live = [i for i in range(len(keys)) if not bad[i]]
  assert all(ids[i] == -1 for i in range(len(keys)) if bad[i])
  for i in live:
    for j in live:
      assert (ids[i] == ids[j]) == (keys[i] == keys[j])
  # Brute force: the live ids, read left to right, introduce 0, 1, 2, ... in order.
  seen = []
  for i in live:
    if ids[i] not in seen:
      assert ids[i] == len(seen)
      seen.append(ids[i])


def test_first_appearance_ids_rejects_length_mismatch():
  with pytest.raises(ValueError, match="2 keys but 1"):
    first_appearance_ids(["a", "b"], [False])


def test_blank_and_singletons():
  assert is_blank("") and is_blank(" \n\t") and not is_blank(" x ")
  np.testing.assert_array_equal(singleton_ids(["x", "", "x", "  ", "y"]), [0, -1, 1, -1, 2])


def test_cluster_groups_stacks_rows_and_checks_shapes():
  judge = get_judge("signature")
  ids = cluster_groups(judge, ["p", "q"], [["a", "b", "a"], ["c", "", "c"]],
                       signatures=[["A", "B", "A"], ["C", "C", "C"]])
  np.testing.assert_array_equal(ids, [[0, 1, 0], [0, -1, 0]])
  assert ids.dtype == np.int32 and ids.shape == (2, 3)
  assert cluster_groups(judge, [], []).shape == (0, 0)
  with pytest.raises(ValueError, match="same number of responses"):
    cluster_groups(judge, ["p", "q"], [["a"], ["b", "c"]], signatures=[["A"], ["B", "C"]])
  with pytest.raises(ValueError, match="2 prompts but 1 response groups"):
    cluster_groups(judge, ["p", "q"], [["a"]])
  with pytest.raises(ValueError, match="2 prompts but 1 signature groups"):
    cluster_groups(judge, ["p", "q"], [["a"], ["b"]], signatures=[["A"]])


def test_unknown_judge_lists_valid_names():
  with pytest.raises(ValueError, match="valid names: .*signature"):
    get_judge("oracle")
