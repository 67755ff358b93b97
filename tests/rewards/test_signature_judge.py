"""The `signature` judge clusters by equality of the task's strategy signatures."""
import numpy as np
import pytest

from explore_rl.rewards.judges import get_judge
from explore_rl.tasks.base import DEGENERATE, DEGENERATE_ID


def test_equal_signatures_share_a_cluster():
  judge = get_judge("signature")
  responses = ["(1+2)*3", "junk", "3*(2+1)", "(1+2)*3 = 9", "1+2+3"]
  # Tree shapes: r0 and r3 share one, r2 is the mirrored tree, r1 is degenerate.
  signatures = [("*", ("+", 1, 2), 3), DEGENERATE, ("*", 3, ("+", 2, 1)),
                ("*", ("+", 1, 2), 3), ("+", ("+", 1, 2), 3)]
  ids = judge.cluster("reach 9 from 1 2 3", responses, signatures=signatures)
  np.testing.assert_array_equal(ids, [0, DEGENERATE_ID, 1, 0, 2])


def test_blank_response_is_degenerate_whatever_its_signature():
  ids = get_judge("signature").cluster("p", ["  ", "x"], signatures=["s", "s"])
  np.testing.assert_array_equal(ids, [DEGENERATE_ID, 0])


def test_missing_or_misaligned_signatures_are_clear_errors():
  judge = get_judge("signature")
  with pytest.raises(ValueError, match="needs the task's strategy signatures"):
    judge.cluster("p", ["a", "b"])
  with pytest.raises(ValueError, match="2 responses but 1 signatures"):
    judge.cluster("p", ["a", "b"], signatures=["s"])
