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

The R rows are packed in `groups` consecutive chunks, each into the same number
of rows, and `index` is local to its chunk ([groups, R / groups, M]). A trainer
makes one chunk per micro-batch (gradient accumulation) and device of the data
axes: each packed micro-batch holds exactly the sequences of its padded one, and
each device's packed rows those of its own padded rows, so the logits are
gathered back without leaving the device (`packed_response_logprobs`). The row
count per chunk is at least `min_rows` and a multiple of `row_multiple`.

Which layout a run's mini-batches take is `RowLayout`'s choice: the padded rows or
packed rows of one of a few lengths L, whichever its cost model puts cheapest. A
packed slot costs more the longer its row (every query scores all L keys of its
row), so the cheapest L is the shortest that packs the sequences tightly, not the
longest. Each (L, rows) shape compiles the update once: the chooser keeps a row
length until another is clearly cheaper and, per length, the most rows it has needed.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Packed(NamedTuple):
  tokens: np.ndarray     # int32 [G·R_p, L], pad id 0 in padding slots
  segments: np.ndarray   # int32 [G·R_p, L], k > 0: k-th sequence of its row; 0: padding
  positions: np.ndarray  # int32 [G·R_p, L], position within its sequence (0 in padding)
  index: np.ndarray      # int32 [G, R/G, M], flat slot in its chunk [R_p·L] scoring token t
                         # (0: masked)


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


def _chunk_fits(lengths: np.ndarray, row_len: int, groups: int, row_multiple: int,
                min_rows: int) -> tuple[list, int]:
  """(each chunk's `_first_fit`, rows per chunk): the R sequences in `groups` consecutive
  chunks, every chunk given the same row count, at least `min_rows` and a multiple of
  `row_multiple`."""
  chunk = len(lengths) // groups
  fits = [_first_fit(lengths[g * chunk:(g + 1) * chunk], row_len) for g in range(groups)]
  n_rows = max(min_rows, *(len(rows) for rows, _ in fits))
  return fits, -(-n_rows // row_multiple) * row_multiple


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
  fits, n_rows = _chunk_fits(lengths, row_len, groups, row_multiple, min_rows)
  tokens = np.zeros((groups * n_rows, row_len), np.int32)
  segments = np.zeros_like(tokens)
  positions = np.zeros_like(tokens)
  index = np.zeros((groups, chunk, m), np.int32)
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
        index[g, local, :r_len[i]] = local_row * row_len + o + p - 1 + np.arange(r_len[i])
  return Packed(tokens, segments, positions, index)


def padding_fraction(packed: Packed) -> float:
  """Share of the packed token slots that hold no token."""
  return float((packed.segments == 0).mean())


# The cost model `RowLayout` minimises, fitted to `rl_update` of `small` on 64-row
# mini-batches of the rl_step sweep (2 CPU devices, rows of 48 to 168 slots;
# benchmarks/README.md): a slot of a row of L slots costs 1 + ATTENTION_COST * L (its share of
# the weight matmuls, plus attention over the row), and a packed slot PACKED_OVERHEAD times a
# padded one of the same length (the segment mask, the logits gathered back and scattered in
# the backward pass).
ATTENTION_COST = 0.003
PACKED_OVERHEAD = 1.05
ROW_LENGTH_FACTORS = (1.0, 1.25, 1.5, 2.0)   # candidate L, in units of P + M
LENGTH_MARGIN = 0.05


def layout_cost(slots: int, row_len: int, packed: bool = True) -> float:
  """The modelled cost of `slots` token slots in rows of `row_len` (module constants)."""
  return slots * (1 + ATTENTION_COST * row_len) * (PACKED_OVERHEAD if packed else 1.0)


class RowLayout:
  """Chooses the layout of a run's update mini-batches, padded or packed in rows of which
  length, whichever `layout_cost` puts cheapest, and packs them (`pack`).

  Candidate row lengths are (P + M) x ROW_LENGTH_FACTORS rounded up to multiples of 4: at
  least P + M, so a longer sequence never forces a change. Every new (length, rows) shape
  compiles the update again (seconds), while two candidates often differ by a few percent
  from one mini-batch to the next. So a mini-batch takes, in this order:
    1. the layout in use, if the mini-batch fits its compiled shape and it costs at most
       `switch` more than the cheapest candidate;
    2. else the cheapest compiled shape it fits within that margin (no compile);
    3. else the cheapest candidate. A layout in use that must grow its rows compiles anyway,
       so it is chosen again only if it is the cheapest.
  Each length keeps the most rows any of its mini-batches has needed, so returning to an
  earlier layout reuses its shape.
  """

  PADDED = 0   # `row_len` of the padded layout

  def __init__(self, prompt_len: int, response_len: int, *, groups: int = 1,
               row_multiple: int = 1, switch: float = 0.25):
    self.padded_len = prompt_len + response_len
    self.row_lens = sorted({-(-int(self.padded_len * f) // 4) * 4 for f in ROW_LENGTH_FACTORS})
    self.groups, self.row_multiple, self.switch = groups, row_multiple, switch
    self.rows: dict[int, int] = {}      # per row length: the most rows per chunk so far
    self.row_len: int | None = None     # the layout in use: a row length, PADDED, None (none yet)
    self.padded_used = False            # whether the padded layout has been compiled

  def state_dict(self) -> dict:
    """The choices so far (JSON): a resumed run lays its mini-batches out as an uninterrupted
    one would."""
    return {"row_len": self.row_len, "rows": {str(n): r for n, r in self.rows.items()},
            "padded_used": self.padded_used}

  def load_state_dict(self, state: dict):
    self.row_len = state["row_len"]
    self.rows = {int(n): r for n, r in state["rows"].items()}
    # Checkpoints from before the field: the padded layout is known compiled only if in use.
    self.padded_used = state.get("padded_used", self.row_len == self.PADDED)

  def _rows(self, lengths: np.ndarray, row_len: int) -> int:
    """Rows per chunk that `pack` would lay `lengths` out in at `row_len`."""
    return _chunk_fits(lengths, row_len, self.groups, self.row_multiple,
                       self.rows.get(row_len, 0))[1]

  def _fits(self, lengths: np.ndarray, row_len: int) -> bool:
    """Whether `lengths` fit a shape of this layout compiled already (no new compile): the
    padded one once used; packed rows of `row_len` if they need no more than its most rows."""
    if row_len == self.PADDED:
      return self.padded_used
    return row_len in self.rows and self._rows(lengths, row_len) == self.rows[row_len]

  def __call__(self, prompt_tokens, prompt_valid, response_tokens,
               response_mask) -> Packed | None:
    """The mini-batch packed in the chosen layout, or None where that is the padded one."""
    lengths = np.asarray(prompt_valid).sum(1) + np.asarray(response_mask).sum(1)
    # Compared on sequences LENGTH_MARGIN longer: a row length that only just holds two of
    # this mini-batch's sequences needs more rows for the next one (row counts are high-water
    # marks), so its saving would not last.
    longer = np.ceil(lengths * (1 + LENGTH_MARGIN)).astype(int)
    cost = {n: layout_cost(self.groups * self._rows(np.minimum(longer, n), n) * n, n)
            for n in self.row_lens}
    cost[self.PADDED] = layout_cost(len(lengths) * self.padded_len, self.padded_len,
                                    packed=False)
    best = min(cost, key=cost.get)
    compiled = [n for n in cost if cost[n] <= (1 + self.switch) * cost[best]
                and self._fits(lengths, n)]
    if self.row_len not in compiled:
      self.row_len = min(compiled, key=cost.get) if compiled else best
    n = self.row_len
    if n == self.PADDED:
      self.padded_used = True
      return None
    packed = pack(prompt_tokens, prompt_valid, response_tokens, response_mask, row_len=n,
                  groups=self.groups, row_multiple=self.row_multiple,
                  min_rows=self.rows.get(n, 0))
    self.rows[n] = packed.tokens.shape[0] // self.groups   # pack's own first fit, not a second
    return packed
