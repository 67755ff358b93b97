"""The trainer's FLOPs counters (docs/algorithms.md, "FLOPs"): each pass of the update by
hand on a tiny shape, and a run's metrics rows adding the sampler's and the trainer's."""
from typing import NamedTuple

import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.models.config import get_preset
from explore_rl.training.flops import update_flops
from explore_rl.training.trainers import TRAINERS
from explore_rl.training.update import RLBatch

TINY = get_preset("tiny", vocab_size=99)


class Spec(NamedTuple):
  """What `update_flops` reads of a `LossSpec`."""
  needs: frozenset = frozenset()
  selects: bool = False


def hand(rows, tokens, context):
  """The tiny preset with 99 tokens by hand (tests/sampling/test_flops.py)."""
  return rows * tokens * (2 * 80064 + 512 * context)


def batch(rows=6, p=10, m=4, teacher_p=None, packed_shape=None):
  z = lambda *shape: np.zeros(shape, np.int32)
  teacher = (z(rows, teacher_p), z(rows, teacher_p)) if teacher_p else (None, None)
  packed = (z(*packed_shape),) * 3 if packed_shape else (None,) * 3
  return RLBatch(z(rows, p), z(rows, p), z(rows, m), z(rows, m), z(rows, m), z(rows, m),
                 z(rows), *teacher, *packed)


def test_update_runs_forward_and_backward_over_the_padded_rows():
  assert update_flops(TINY, batch(), Spec(), micro_batches=1) == {"update": 3 * hand(6, 14, 14)}


def test_packed_rows_and_the_reference_pass():
  flops = update_flops(TINY, batch(packed_shape=(2, 30)), Spec(frozenset({"ref_logprobs"})),
                       micro_batches=1)
  assert flops == {"update": 3 * hand(2, 30, 30), "reference": hand(2, 30, 30)}


def test_choosing_tokens_over_micro_batches_adds_a_forward():
  one, two = (update_flops(TINY, batch(), Spec(selects=True), micro_batches=k)["update"]
              for k in (1, 2))
  assert (one, two) == (3 * hand(6, 14, 14), 4 * hand(6, 14, 14))


def test_the_teacher_reads_its_privileged_prompt_and_full_logits_are_padded():
  big = get_preset("small", vocab_size=99)
  flops = update_flops(TINY, batch(teacher_p=25, packed_shape=(2, 30)),
                       Spec(frozenset({"logits", "teacher_logits"})), micro_batches=1,
                       teacher_config=big)
  assert flops["update"] == 3 * hand(6, 14, 14)             # full logits: the padded rows
  w_small = 6 * (2 * 192 * 192 + 2 * 192 * 64 + 3 * 192 * 512) + 99 * 192
  assert flops["teacher"] == 6 * 29 * (2 * w_small + 4 * 6 * 6 * 32 * 29)


@pytest.mark.slow
def test_a_run_counts_sampling_update_reference_and_recompute(tmp_path):
  config = load_config("grpo:tiny", {"total_steps": 1, "eval_every": 1,
                                     "checkpoint_every": 1, "objective.kl_coef": 0.1,
                                     "rollout.old_logprobs": "recompute"})
  config.learner.pack = False                                # the padded rows, by hand
  TRAINERS.get("rl")(config, str(tmp_path))
  (row,) = read_metrics(str(tmp_path))
  b, n = config.rollout.prompts_per_step, config.rollout.num_samples
  p, m = config.max_prompt_len, config.max_response_len
  assert row["truncated_frac"] > 0                          # the decode ran all m steps
  assert row["flops_sample"] == pytest.approx(hand(b, p, p) + hand(b * n, m, p + m), rel=1e-6)
  full = hand(b * n, p + m, p + m)
  assert row["flops_update"] == 3 * full * config.learner.epochs
  assert row["flops_reference"] == full * config.learner.epochs
  assert row["flops_recompute"] == full and row["flops_teacher"] == 0
  assert row["flops_train"] == pytest.approx(
      row["flops_update"] + row["flops_reference"] + row["flops_recompute"])
