"""Exploration diagnostics computed at every evaluation: branching, coverage, learning progress.

Pure NumPy on the host copy of an evaluation's rollouts (`evaluate.py` glues them in;
every key below lands in the eval row of metrics.jsonl). docs/algorithms.md,
"Exploration diagnostics", has the definitions; in short, for a prompt with N responses:

Branching point (Poly-EPO, arXiv 2604.17654, reports that better explorers branch
earlier). Response i is its tokens up to and including EOS, s_i = y_i[:L_i] (L_i =
`lengths`, EOS included; a truncated response has no EOS and L_i = M). For a pair
(i, j) the branching point is

    d(i, j) = min{ t < min(L_i, L_j) : s_i[t] != s_j[t] }.

Because the EOS is part of s_i, a pair identical up to the shorter response's EOS
diverges exactly there (EOS against a real token); positions past min(L_i, L_j) are
padding and are never compared. A pair with L_i = L_j and equal tokens never diverges:
it counts in `branch_identical_frac`, not in the position statistics (a pair of
truncated responses that agree on all M tokens is identical too). Keys, over all
diverging pairs of all prompts:

    branch_point_mean, branch_point_median, branch_point_p10, branch_point_p90
                           d in tokens (0 = the first response token differs)
    branch_point_rel_mean  d / min(L_i, L_j) in [0, 1): where in the shorter response
    branch_first_mean      mean over prompts of min_{i<j} d(i, j): where the prompt's
                           tree of samples first splits (prompts without a diverging
                           pair are left out)
    branch_identical_frac  identical pairs / all pairs
    branch_rel_hist        a histogram-friendly summary: the fraction of diverging pairs
                           with d / min(L_i, L_j) in each of the `REL_BINS` = 10 bins
                           [0, .1), ..., [.9, 1] (a list; fixed bins, so rows of
                           different evaluations stack into a heat map)

Coverage (the seed's exploration criterion: does some sample solve the prompt?). With
c_b correct responses among N:

    coverage               mean_b [c_b >= 1]  (= pass@N)
    solved_by_none         mean_b [c_b = 0]
    solved_by_all          mean_b [c_b = N]
    distinct_correct_answers     mean_b |{answer(y_i): y_i correct}|
    distinct_correct_strategies  mean_b |{signature(y_i): y_i correct, not degenerate}|

Per-prompt learning progress (the seed's criterion for a good explore policy: how much
the exploit policy improves). The evaluation set is fixed for a run and every eval
draws with the same PRNG key (common random numbers), so a prompt's pass rate
p_b = c_b / N can be compared between consecutive evaluations t-1 and t:

    Δ_b = p_b(t) − p_b(t−1);  progress_mean = mean_b Δ_b,  progress_abs_mean = mean_b |Δ_b|,
    progress_improved_frac = mean_b [Δ_b > 0],  progress_regressed_frac = mean_b [Δ_b < 0]

The previous counts come from the previous eval row's `eval_num_correct` (a list of
c_b, written at every eval); the RL trainer keeps them, and reads them back from
metrics.jsonl on a resume. The first evaluation of a run has no progress keys.
"""
from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from explore_rl.tasks.base import DEGENERATE

__all__ = ["REL_BINS", "branching_points", "branching_metrics", "coverage_metrics",
           "learning_progress"]

REL_BINS = 10


def branching_points(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """Pairwise branching points of one prompt's responses.

  tokens int [N, M] (anything past a row's length is ignored), lengths int [N] (EOS
  included). Returns int [N, N]: d(i, j) as in the module docstring, -1 where the pair
  never diverges (and on the diagonal).
  """
  tokens = np.asarray(tokens)
  lengths = np.asarray(lengths, np.int64)
  n, m = tokens.shape
  short = np.minimum(lengths[:, None], lengths[None, :])                 # [N, N]
  differs = tokens[:, None, :] != tokens[None, :, :]                     # [N, N, M]
  differs &= np.arange(m)[None, None, :] < short[..., None]
  first = np.where(differs.any(-1), differs.argmax(-1), -1)
  # Equal over the shorter one with unequal lengths: impossible when the lengths include
  # the EOS (the shorter's EOS meets a real token); for lengths that exclude it, a strict
  # prefix diverges where the shorter one ends, i.e. where its EOS would be.
  prefix = (first < 0) & (lengths[:, None] != lengths[None, :])
  first = np.where(prefix, short, first)
  np.fill_diagonal(first, -1)
  return first


def branching_metrics(tokens: np.ndarray, lengths: np.ndarray) -> dict:
  """Branching statistics over B prompts: tokens int [B, N, M], lengths int [B, N]."""
  tokens, lengths = np.asarray(tokens), np.asarray(lengths)
  b, n = lengths.shape
  if n < 2:
    return {}
  iu = np.triu_indices(n, k=1)
  points, rel, firsts = [], [], []
  for g in range(b):
    d = branching_points(tokens[g], lengths[g])[iu]
    short = np.minimum(lengths[g][:, None], lengths[g][None, :])[iu]
    keep = d >= 0
    points.append(d[keep])
    rel.append(d[keep] / np.maximum(short[keep], 1))
    if keep.any():
      firsts.append(d[keep].min())
  points, rel = np.concatenate(points), np.concatenate(rel)
  num_pairs = b * len(iu[0])
  out = {"branch_identical_frac": float(1.0 - len(points) / num_pairs)}
  if len(points):
    hist, _ = np.histogram(np.clip(rel, 0.0, 1.0), bins=REL_BINS, range=(0.0, 1.0))
    out.update(branch_point_mean=float(points.mean()),
               branch_point_median=float(np.median(points)),
               branch_point_p10=float(np.percentile(points, 10)),
               branch_point_p90=float(np.percentile(points, 90)),
               branch_point_rel_mean=float(rel.mean()),
               branch_first_mean=float(np.mean(firsts)),
               branch_rel_hist=[float(h) for h in hist / len(points)])
  return out


def coverage_metrics(correct: np.ndarray, answers: Sequence[Sequence[Hashable]],
                     signatures: Sequence[Sequence[Hashable]]) -> dict:
  """Coverage over B prompts. correct bool [B, N]; answers[b][i] the final answer of
  response i (None when unparseable); signatures[b][i] its strategy (`DEGENERATE` when
  it has none). Only correct responses count towards the distinct answers and strategies.
  """
  correct = np.asarray(correct, bool)
  c = correct.sum(axis=1)
  n = correct.shape[1]
  answer_counts = [len({a for a, ok in zip(row, oks) if ok and a is not None})
                   for row, oks in zip(answers, correct)]
  strategy_counts = [len({s for s, ok in zip(row, oks) if ok and s != DEGENERATE})
                     for row, oks in zip(signatures, correct)]
  return {"coverage": float(np.mean(c >= 1)), "solved_by_none": float(np.mean(c == 0)),
          "solved_by_all": float(np.mean(c == n)),
          "distinct_correct_answers": float(np.mean(answer_counts)),
          "distinct_correct_strategies": float(np.mean(strategy_counts))}


def learning_progress(previous: Sequence[int] | None, current: Sequence[int],
                      num_samples: int) -> dict:
  """Progress keys from the per-prompt correct counts of two consecutive evaluations.

  previous, current: int [B] (c_b of the same prompts, in the same order). {} when there
  is no previous evaluation or it was over another prompt set (its length differs).
  """
  if previous is None or len(previous) != len(current) or not len(current):
    return {}
  delta = (np.asarray(current, np.float64) - np.asarray(previous, np.float64)) / num_samples
  return {"progress_mean": float(delta.mean()), "progress_abs_mean": float(np.abs(delta).mean()),
          "progress_improved_frac": float(np.mean(delta > 0)),
          "progress_regressed_frac": float(np.mean(delta < 0))}
