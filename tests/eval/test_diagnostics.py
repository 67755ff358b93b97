"""Exploration diagnostics on hand-built arrays (explore_rl/eval/diagnostics.py)."""
import numpy as np
import pytest

from explore_rl.eval.diagnostics import (REL_BINS, branching_metrics, branching_points,
                                         coverage_metrics, learning_progress)

EOS, PAD = 2, 0


def _rows(*seqs, m=6):
  """Token rows with EOS appended and PAD after it (no EOS when a row fills m tokens)."""
  tokens = np.full((len(seqs), m), PAD)
  lengths = []
  for i, s in enumerate(seqs):
    row = list(s) + ([EOS] if len(s) < m else [])
    tokens[i, :len(row)] = row
    lengths.append(len(row))
  return tokens, np.asarray(lengths)


def test_identical_rows_never_diverge():
  tokens, lengths = _rows([5, 6, 7], [5, 6, 7], [5, 6, 7])
  d = branching_points(tokens, lengths)
  assert (d == -1).all()
  m = branching_metrics(tokens[None], lengths[None])
  assert m == {"branch_identical_frac": 1.0}


def test_divergence_at_a_known_position():
  tokens, lengths = _rows([5, 6, 7, 8], [5, 6, 9, 8], [4, 6, 7, 8])
  d = branching_points(tokens, lengths)
  assert d[0, 1] == d[1, 0] == 2
  assert d[0, 2] == d[1, 2] == 0
  assert np.diag(d).tolist() == [-1, -1, -1]
  m = branching_metrics(tokens[None], lengths[None])
  assert m["branch_identical_frac"] == 0.0
  assert m["branch_point_mean"] == pytest.approx(2 / 3)
  assert m["branch_point_median"] == 0.0
  assert m["branch_first_mean"] == 0.0
  # relative to the shorter response (5 tokens with EOS): 2/5, 0, 0
  assert m["branch_point_rel_mean"] == pytest.approx(2 / 15)
  assert len(m["branch_rel_hist"]) == REL_BINS and sum(m["branch_rel_hist"]) == pytest.approx(1)
  assert m["branch_rel_hist"][0] == pytest.approx(2 / 3) and m["branch_rel_hist"][4] == \
      pytest.approx(1 / 3)


def test_padding_after_eos_a_prefix_diverges_at_the_shorter_eos():
  # Row 1 is row 0 cut short: identical up to row 1's EOS at position 2, where row 0
  # has a real token; the pads after row 1's EOS are never compared.
  tokens, lengths = _rows([5, 6, 7, 8], [5, 6])
  assert branching_points(tokens, lengths)[0, 1] == 2
  # Garbage after EOS changes nothing: only the first `lengths` tokens count.
  tokens2 = tokens.copy()
  tokens2[1, 3:] = 99
  assert branching_points(tokens2, lengths)[0, 1] == 2
  same, same_len = _rows([5, 6], [5, 6])
  same[1, 3:] = 77                      # different padding, same response
  assert branching_points(same, same_len)[0, 1] == -1


def test_lengths_without_eos_prefix_diverges_where_the_shorter_ends():
  tokens = np.asarray([[5, 6, 7], [5, 6, 0]])
  assert branching_points(tokens, np.asarray([3, 2]))[0, 1] == 2


def test_truncated_rows_equal_over_all_m_tokens_are_identical():
  tokens, lengths = _rows([1, 3, 4, 5, 6, 7], [1, 3, 4, 5, 6, 7], [1, 3, 4, 5, 6, 9])
  assert lengths.tolist() == [6, 6, 6]
  d = branching_points(tokens, lengths)
  assert d[0, 1] == -1 and d[0, 2] == d[1, 2] == 5


def test_branching_over_several_prompts_and_first_split():
  a, la = _rows([5, 6, 7], [5, 6, 8], [5, 6, 8])      # pairs: 2, 2, identical
  b, lb = _rows([1, 2, 3], [4, 2, 3], [1, 2, 9])      # pairs: 0, 2, 0
  m = branching_metrics(np.stack([a, b]), np.stack([la, lb]))
  assert m["branch_identical_frac"] == pytest.approx(1 / 6)
  assert m["branch_point_mean"] == pytest.approx((2 + 2 + 0 + 2 + 0) / 5)
  assert m["branch_first_mean"] == pytest.approx((2 + 0) / 2)
  assert m["branch_point_p10"] == 0.0 and m["branch_point_p90"] == 2.0


def test_coverage_on_hand_built_rewards():
  correct = np.asarray([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], bool)
  answers = [["4", "4", "04", "4"], [None] * 4, ["7", None, "8", None], [None, None, None, "1"]]
  sigs = [[(1, 3), (2, 2), (1, 3), "degenerate"], ["degenerate"] * 4,
          [(7,), (1,), (8,), (2,)], [(1,), (1,), (1,), (1,)]]
  m = coverage_metrics(correct, answers, sigs)
  assert m["coverage"] == 0.75
  assert m["solved_by_none"] == 0.25 and m["solved_by_all"] == 0.25
  assert m["distinct_correct_answers"] == pytest.approx((2 + 0 + 2 + 1) / 4)
  # wrong responses' strategies and degenerate ones do not count
  assert m["distinct_correct_strategies"] == pytest.approx((2 + 0 + 2 + 1) / 4)


def test_learning_progress_between_evaluations():
  m = learning_progress([0, 2, 4, 1], [1, 2, 2, 4], num_samples=4)
  assert m["progress_mean"] == pytest.approx((1 + 0 - 2 + 3) / 16)
  assert m["progress_abs_mean"] == pytest.approx((1 + 0 + 2 + 3) / 16)
  assert m["progress_improved_frac"] == 0.5 and m["progress_regressed_frac"] == 0.25
  assert learning_progress(None, [1, 2], 4) == {}
  assert learning_progress([1, 2, 3], [1, 2], 4) == {}   # another prompt set
