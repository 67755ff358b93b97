"""Agglomerative threshold clustering: hand-worked cases and scipy's dendrogram cut."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explore_rl.rewards.agglomerative import agglomerative_clusters
from explore_rl.rewards.clusters import first_appearance_ids

# Items 0,1 are close (0.9); 2 is 0.6 from 0 and 0.4 from 1; 3 is far from all.
SIM = np.array([[1.0, 0.9, 0.6, 0.1],
                [0.9, 1.0, 0.4, 0.0],
                [0.6, 0.4, 1.0, 0.2],
                [0.1, 0.0, 0.2, 1.0]])


@pytest.mark.parametrize("linkage,threshold,expected", [
    # Merge {0,1} at 0.9; then s({0,1}, 2) = (0.6 + 0.4) / 2 = 0.5 (average) or 0.4 (complete).
    ("average", 0.5, [0, 0, 0, 1]),
    ("average", 0.51, [0, 0, 1, 2]),
    ("complete", 0.5, [0, 0, 1, 2]),
    ("complete", 0.4, [0, 0, 0, 1]),
    # Then s({0,1,2}, 3) = (0.1 + 0 + 0.2) / 3 = 0.1 (average) or 0 (complete).
    ("average", 0.1, [0, 0, 0, 0]),
    ("complete", 0.01, [0, 0, 0, 1]),
    ("average", 1.01, [0, 1, 2, 3]),
])
def test_hand_worked_merges(linkage, threshold, expected):
  ids = agglomerative_clusters(SIM, threshold=threshold, linkage=linkage)
  np.testing.assert_array_equal(ids, expected)
  assert ids.dtype == np.int32


def test_first_appearance_numbering_and_empty():
  perm = [3, 1, 2, 0]
  ids = agglomerative_clusters(SIM[np.ix_(perm, perm)], threshold=0.5)
  np.testing.assert_array_equal(ids, [0, 1, 1, 1])
  assert agglomerative_clusters(np.zeros((0, 0)), threshold=0.5).shape == (0,)


def test_rejects_bad_inputs():
  with pytest.raises(ValueError, match="valid: average, complete"):
    agglomerative_clusters(SIM, threshold=0.5, linkage="single")
  with pytest.raises(ValueError, match="square"):
    agglomerative_clusters(np.zeros((2, 3)), threshold=0.5)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 9), st.integers(0, 2**31 - 1), st.floats(-0.5, 0.95),
       st.sampled_from(["average", "complete"]))
def test_equals_scipy_dendrogram_cut(n, seed, threshold, linkage):
  hierarchy = pytest.importorskip("scipy.cluster.hierarchy")
  x = np.random.default_rng(seed).normal(size=(n, 3))
  x /= np.linalg.norm(x, axis=1, keepdims=True)
  sim = x @ x.T
  dist = 1.0 - sim[np.triu_indices(n, 1)]  # Condensed distances.
  tree = hierarchy.linkage(dist, method=linkage)
  expected = hierarchy.fcluster(tree, t=1.0 - threshold, criterion="distance")
  ids = agglomerative_clusters(sim, threshold=threshold, linkage=linkage)
  np.testing.assert_array_equal(ids, first_appearance_ids(expected.tolist(), [False] * n))
