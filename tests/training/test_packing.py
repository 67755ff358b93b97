"""Packed update batches (training/packing.py) give the padded computation's log-probs,
loss and gradients, with less padding."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.models.logprobs import packed_response_logprobs, response_logprobs
from explore_rl.training import packing
from explore_rl.config_files import load_config
from explore_rl.training.objective_builder import Objective
from explore_rl.training.update import RLBatch, rl_update
from explore_rl.training.state import init_state

P, M, R = 6, 9, 8


@pytest.fixture(scope="module")
def batch():
  """R padded rows: ragged left-padded prompts, ragged right-padded responses (one empty)."""
  rng = np.random.default_rng(0)
  p_len = rng.integers(1, P + 1, R)
  r_len = np.concatenate([[0, M], rng.integers(1, M, R - 2)])
  prompt = np.where(np.arange(P) >= P - p_len[:, None], rng.integers(3, 100, (R, P)), 0)
  response = np.where(np.arange(M) < r_len[:, None], rng.integers(3, 100, (R, M)), 0)
  return RLBatch(jnp.asarray(prompt, jnp.int32), jnp.asarray(np.arange(P) >= P - p_len[:, None]),
                 jnp.asarray(response, jnp.int32), jnp.asarray(np.arange(M) < r_len[:, None]),
                 jnp.asarray(rng.normal(-2, 0.3, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(-2, 0.3, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(0, 1, R), jnp.float32))


def _packed(batch, groups, row_len=24):
  p = packing.pack(batch.prompt_tokens, batch.prompt_valid, batch.response_tokens,
                   batch.response_mask, row_len=row_len, groups=groups, row_multiple=2)
  return batch._replace(**{f"packed_{k}": jnp.asarray(v) for k, v in p._asdict().items()}), p


def test_packed_logprobs_equal_padded(batch):
  graphdef, params = tr.init(get_preset("tiny"), seed=2)
  packed, p = _packed(batch, groups=1)
  padded = 1 - float(np.mean(np.concatenate([batch.prompt_valid, batch.response_mask], 1)))
  assert p.tokens.shape[0] % 2 == 0 and packing.padding_fraction(p) < padded
  want = response_logprobs(graphdef, params, batch.prompt_tokens, batch.prompt_valid,
                           batch.response_tokens, batch.response_mask, temperature=0.7)
  got = packed_response_logprobs(graphdef, params, packed.packed_tokens, packed.packed_segments,
                                 packed.packed_positions, packed.packed_index,
                                 batch.response_tokens, batch.response_mask, temperature=0.7)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


def test_packed_update_equals_padded_loss_and_gradients(batch):
  """One `rl_update` (2 micro-batches, KL to a reference, entropy bonus): same loss and
  gradients (an SGD step of rate 1: the parameter change is minus the gradient)."""
  graphdef, params = tr.init(get_preset("tiny"), seed=2)
  ref = jax.tree.map(lambda x: x * 0.9, params)
  opt = optax.sgd(1.0)
  objective = load_config("grpo:tiny").objective
  objective.kl_coef, objective.entropy_coef = 0.1, 0.01
  spec = Objective(objective).loss_spec
  packed, _ = _packed(batch, groups=2)
  out = {}
  for name, b in (("padded", batch), ("packed", packed)):
    state = init_state(jax.tree.map(jnp.copy, params), opt, 0)
    out[name] = rl_update(graphdef, opt, spec, state, ref, b, jax.random.key(1),
                          micro_batches=2, temperature=1.0)
  (s_pad, m_pad), (s_pack, m_pack) = out["padded"], out["packed"]
  for k in ("loss", "grad_norm", "entropy", "kl_ref"):
    np.testing.assert_allclose(m_pack[k], m_pad[k], rtol=1e-5, atol=1e-7, err_msg=k)
  grads = {k: jax.tree.map(jnp.subtract, params, s.params)
           for k, s in (("padded", s_pad), ("packed", s_pack))}
  assert m_pad["grad_norm"] > 0
  for a, b in zip(jax.tree.leaves(grads["packed"]), jax.tree.leaves(grads["padded"])):
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-4)


def test_packed_logprobs_gather_on_each_device_over_a_data_mesh(batch):
  """One chunk per device (8 devices, one sequence each): the same log-probs as the padded
  layout on one device, and the compiled program gathers the logits without an all-gather."""
  from explore_rl.models import sharding
  graphdef, params = tr.init(get_preset("tiny"), seed=2)
  mesh = sharding.make_mesh({"data": -1, "fsdp": 1})
  p = packing.pack(batch.prompt_tokens, batch.prompt_valid, batch.response_tokens,
                   batch.response_mask, row_len=P + M, groups=mesh.size)
  place = lambda x: jax.device_put(x, sharding.batch_sharding(mesh, np.ndim(x)))
  args = [place(np.asarray(x)) for x in (p.tokens, p.segments, p.positions, p.index,
                                         batch.response_tokens, batch.response_mask)]
  fn = jax.jit(lambda prm, *a: packed_response_logprobs(graphdef, prm, *a, temperature=0.7))
  params = jax.device_put(params, sharding.replicated(mesh))
  assert "all-gather" not in fn.lower(params, *args).compile().as_text()
  want = response_logprobs(graphdef, jax.device_get(params), batch.prompt_tokens,
                           batch.prompt_valid, batch.response_tokens, batch.response_mask,
                           temperature=0.7)
  for a, b in zip(fn(params, *args), want):
    np.testing.assert_allclose(a, b, atol=2e-5, rtol=0)


def test_pack_keeps_micro_batches_apart_and_rejects_non_prefix_masks(batch):
  _, p = _packed(batch, groups=2)
  half = p.tokens.shape[0] // 2
  # the first micro-batch's rows hold exactly the first R/2 sequences' tokens
  n_first = int((np.asarray(batch.prompt_valid[:R // 2]).sum()
                 + np.asarray(batch.response_mask[:R // 2]).sum()))
  assert int((p.segments[:half] > 0).sum()) == n_first
  bad = np.asarray(batch.response_mask).copy()
  bad[1, 0] = False
  with pytest.raises(ValueError, match="prefixes"):
    packing.pack(batch.prompt_tokens, batch.prompt_valid, batch.response_tokens, bad,
                 row_len=24)


def _rows_of(prompt_lens, response_lens, p=10, m=22):
  """Host arrays of padded rows with these prompt and response lengths (tokens all 5)."""
  pl, rl = np.asarray(prompt_lens)[:, None], np.asarray(response_lens)[:, None]
  valid = np.arange(p) >= p - pl
  mask = np.arange(m) < rl
  return (np.where(valid, 5, 0).astype(np.int32), valid, np.where(mask, 5, 0).astype(np.int32),
          mask)


def test_row_layout_picks_the_cheapest_row_length_by_hand():
  """P + M = 32: candidate rows of 32, 40, 48, 64 slots. Eight sequences of 9 tokens, compared
  as 10 (LENGTH_MARGIN): modelled costs (slots x (1 + 0.003 L) x 1.05) 110.5 (L 32: 3 rows),
  94.1 (40: 2 rows of 4), 115.3 (48: 2 rows), 160.2 (64: 2 rows) against 280.6 padded: rows
  of 40."""
  layout = packing.RowLayout(10, 22)
  assert layout.row_lens == [32, 40, 48, 64]
  p = layout(*_rows_of([4] * 8, [5] * 8))
  assert layout.row_len == 40 and p.tokens.shape == (2, 40)
  assert packing.padding_fraction(p) == pytest.approx(0.1)
  np.testing.assert_allclose(packing.layout_cost(80, 40), 94.08)
  np.testing.assert_allclose(packing.layout_cost(256, 32, packed=False), 280.576)
  # Sequences of 10 would fill rows of 40 exactly, but one token more would not: compared
  # as 11, rows of 40 need 3 (141.1) and rows of 48 win (2 rows of 4, 115.3).
  assert packing.RowLayout(10, 22)(*_rows_of([4] * 8, [6] * 8)).tokens.shape == (2, 48)


def test_row_layout_keeps_padded_rows_when_packing_saves_nothing():
  """Full-length sequences: packed rows of 32 are as many slots as the padded layout and each
  costs 5% more; longer rows hold no more of them per slot."""
  layout = packing.RowLayout(10, 22, row_multiple=2)
  assert layout(*_rows_of([10] * 8, [22] * 8)) is None


def test_row_layout_switches_only_to_a_layout_a_quarter_cheaper():
  """Modelled costs by hand (rows even: `row_multiple` 2; sequences of 9 compared as 10)."""
  layout = packing.RowLayout(10, 22, row_multiple=2)
  assert layout(*_rows_of([4] * 8, [5] * 8)).tokens.shape == (2, 40)   # as above
  # Six sequences: 2 rows of 32 (73.6) against 40's 2 rows (94.1), 28% more: switch.
  assert layout(*_rows_of([4] * 6, [5] * 6)).tokens.shape == (2, 32)
  # Nine: rows of 32 need 4 (147.3), the cheapest (40: 4 rows, 188.2; 64: 2 rows, 160.2).
  assert layout(*_rows_of([4] * 9, [5] * 9)).tokens.shape == (4, 32)
  # Two sequences of 3: two padded rows (70.1) against 32's high-water 4 rows (147.3):
  # switch; 32 keeps its 4 rows for a later return.
  assert layout(*_rows_of([1] * 2, [2] * 2)) is None and layout.rows[32] == 4
  # One sequence of 30 and three of 3: 40's high-water 2 rows (94.1) against 4 padded rows
  # (140.3), 48 (115.3), 32's 4 rows (147.3) and 64 (160.2).
  assert layout(*_rows_of([10] + [1] * 3, [20] + [2] * 3)).tokens.shape == (2, 40)


_NEARLY_FULL = _rows_of([10, 10, 10, 1], [22, 22, 22, 2])   # compared as 34, 34, 34, 4
_THREE_OF_16 = _rows_of([10] * 3, [6] * 3)                    # compared as 17


def test_row_layout_keeps_its_layout_when_another_is_only_a_little_cheaper():
  layout = packing.RowLayout(10, 22)
  assert layout(*_rows_of([4] * 8, [5] * 8)).tokens.shape == (2, 40)
  # Three sequences of 16 fit the 2 rows of 40 compiled already (94.1); one row of 64 would
  # cost 80.1, 17% less: no switch, and no new compile of the update.
  assert layout(*_THREE_OF_16).tokens.shape == (2, 40)
  np.testing.assert_allclose(packing.layout_cost(64, 64), 80.1024)
  assert packing.RowLayout(10, 22)(*_THREE_OF_16).tokens.shape == (1, 64)   # a fresh choice


def test_row_layout_chooses_afresh_when_its_rows_must_grow_and_returns_to_compiled_shapes():
  """A layout whose rows must grow compiles a new shape anyway, so the cheapest candidate is
  taken then; later, a shape compiled already is preferred to a new one within the margin."""
  layout = packing.RowLayout(10, 22)
  assert layout(*_rows_of([4] * 8, [5] * 8)).tokens.shape == (2, 40)
  # Three full-length sequences and one of 3 need 3 rows of 40 (141.1), a new shape: padded
  # rows (140.3) are the cheapest and taken; 40 keeps its 2 rows.
  assert layout(*_NEARLY_FULL) is None and layout.rows[40] == 2
  np.testing.assert_allclose(packing.layout_cost(4 * 32, 32, packed=False), 140.288)
  np.testing.assert_allclose(packing.layout_cost(3 * 40, 40), 141.12)
  # Three sequences of 16: one row of 64 (80.1, new) is the cheapest, the padded rows in use
  # (105.2) 31% dearer; the compiled 2 rows of 40 (94.1) are within a quarter: taken.
  assert layout(*_THREE_OF_16).tokens.shape == (2, 40)
  np.testing.assert_allclose(packing.layout_cost(3 * 32, 32, packed=False), 105.216)


def test_row_layout_state_round_trips_through_json():
  """A resumed run's chooser makes the uninterrupted run's choice, where a fresh one would not."""
  import json
  layout = packing.RowLayout(10, 22)
  layout(*_rows_of([4] * 8, [5] * 8))                          # rows of 40
  restored = packing.RowLayout(10, 22)
  restored.load_state_dict(json.loads(json.dumps(layout.state_dict())))
  assert packing.RowLayout(10, 22)(*_THREE_OF_16).tokens.shape == (1, 64)   # the cheapest
  assert restored(*_THREE_OF_16).tokens.shape == layout(*_THREE_OF_16).tokens.shape == (2, 40)
  assert restored(*_NEARLY_FULL) is None and layout(*_NEARLY_FULL) is None
  assert restored.state_dict() == layout.state_dict() and layout.padded_used
