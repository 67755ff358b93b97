"""Packing an update mini-batch: several [prompt | response] sequences per row.

The learner's padded layout gives every row P + M slots (left-padded prompt,
right-padded response), so short responses leave most slots as padding. Packing
lays the real tokens of each sequence i (p_i prompt + r_i response tokens, the
response mask being a prefix) end to end in rows of L slots, first-fit by
decreasing length, with

  segment s_j = k > 0 for the k-th sequence of a row, 0 for padding;
  position  = index of the token within its own sequence (RoPE, as
              `positions_from_mask` gives the padded layout);
  attention: query j sees key j' iff s_j = s_j' > 0 and j' <= j (`segment_mask`),

so each sequence attends to exactly the keys it attends to in the padded layout
and its logits are the same function of the parameters. The logits at packed
slot o_i + p_i - 1 + t score response token t (`index`), which gathers them back
into the padded [R, M] layout the losses read: the loss, its gradients and every
token statistic are those of the padded computation, up to fp32 summation order.

Micro-batches (gradient accumulation over `groups` consecutive chunks of the R
rows) are packed chunk by chunk into the same number of rows, so each packed
micro-batch holds exactly the sequences of its padded one; `index` is local to
its chunk. The row count per chunk is at least `min_rows` (a trainer passes the
most it has needed so far, so the update compiles again only when a mini-batch
needs more rows than any before) and a multiple of `row_multiple` (the mesh's
batch divisor).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Packed(NamedTuple):
  tokens: np.ndarray     # int32 [G·R_p, L], pad id 0 in padding slots
  segments: np.ndarray   # int32 [G·R_p, L], k > 0: k-th sequence of its row; 0: padding
  positions: np.ndarray  # int32 [G·R_p, L], position within its sequence (0 in padding)
  index: np.ndarray      # int32 [R, M], flat slot in its chunk [R_p·L] scoring token t (0: masked)


def default_row_len(prompt_len: int, response_len: int) -> int:
  """L = 2 (P + M): two sequences of full length, three or more of shorter ones (a row of
  P + M would pack nothing when most sequences are longer than half of it)."""
  return 2 * (prompt_len + response_len)


def _first_fit(lengths: np.ndarray, row_len: int) -> tuple[list[list[int]], np.ndarray]:
  """(rows: sequence ids per row, offsets [n]): first-fit by decreasing length."""
  rows, free, offsets = [], [], np.zeros(len(lengths), np.int64)
  for i in np.argsort(-lengths, kind="stable"):
    row = next((r for r, f in enumerate(free) if f >= lengths[i]), None)
    if row is None:
      rows.append([])
      free.append(row_len)
      row = len(rows) - 1
    offsets[i] = row_len - free[row]
    rows[row].append(int(i))
    free[row] -= int(lengths[i])
  return rows, offsets


def pack(prompt_tokens, prompt_valid, response_tokens, response_mask, *, row_len: int,
         groups: int = 1, row_multiple: int = 1, min_rows: int = 0) -> Packed:
  """Pack R padded rows (prompt [R, P] left-padded, response [R, M] with prefix masks).

  `groups`: the micro-batches, packed separately (module docstring); R % groups == 0.
  """
  prompt_tokens, prompt_valid, response_tokens, response_mask = map(
      np.asarray, (prompt_tokens, prompt_valid, response_tokens, response_mask))
  r, m = response_mask.shape
  p_len = prompt_valid.sum(1)
  r_len = response_mask.sum(1)
  if (response_mask != (np.arange(m) < r_len[:, None])).any():
    raise ValueError("packing needs response masks that are prefixes (tokens up to EOS)")
  lengths = p_len + r_len
  if lengths.max() > row_len:
    raise ValueError(f"a sequence of {lengths.max()} tokens does not fit a row of {row_len}")
  chunk = r // groups
  fits = [_first_fit(lengths[g * chunk:(g + 1) * chunk], row_len) for g in range(groups)]
  n_rows = max(min_rows, *(len(rows) for rows, _ in fits))
  n_rows = -(-n_rows // row_multiple) * row_multiple
  tokens = np.zeros((groups * n_rows, row_len), np.int32)
  segments = np.zeros_like(tokens)
  positions = np.zeros_like(tokens)
  index = np.zeros((r, m), np.int32)
  for g, (rows, offsets) in enumerate(fits):
    for local_row, ids in enumerate(rows):
      row = g * n_rows + local_row
      for k, local in enumerate(ids, start=1):
        i = g * chunk + local
        o, p, n = int(offsets[local]), int(p_len[i]), int(lengths[i])
        tokens[row, o:o + n] = np.concatenate(
            [prompt_tokens[i][prompt_valid[i]], response_tokens[i, :r_len[i]]])
        segments[row, o:o + n] = k
        positions[row, o:o + n] = np.arange(n)
        index[i, :r_len[i]] = local_row * row_len + o + p - 1 + np.arange(r_len[i])
  return Packed(tokens, segments, positions, index)


# A packed slot costs ~1.2x a padded one (rows of 2(P + M): twice the attention per token,
# the logits gathered back and scattered in the backward pass; benchmarks/README.md).
PACKED_SLOT_COST = 1.2


def worth_packing(packed: Packed, padded_slots: int) -> bool:
  """Whether the packed rows cost less than the `padded_slots` of the padded layout."""
  return PACKED_SLOT_COST * packed.tokens.size < padded_slots


def padding_fraction(packed: Packed) -> float:
  """Share of the packed token slots that hold no token."""
  return float((packed.segments == 0).mean())
