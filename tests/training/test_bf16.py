"""bf16 parameters and compute (model_overrides dtype/param_dtype "bfloat16"), fp32 where it
matters: log-probs, losses and the optimizer's moments (training/state.py).

Tolerances (tiny preset, stated here, measured on CPU): per-token log-probs of the same
weights within 0.1 nats of fp32 (bf16 keeps 8 mantissa bits: ~0.4% per matmul); SFT
losses and entropies of 3 steps within 3% of the fp32 run's.
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.models import transformer
from explore_rl.models.config import get_preset
from explore_rl.models.logprobs import response_logprobs
from explore_rl.training.rl import train_rl
from explore_rl.training.sft import train_sft
from explore_rl.training.policy_loader import (adapt_policy, initial_policy, load_initial_policy,
                                               read_model_config)

BF16 = ml_collections.ConfigDict(dict(dtype="bfloat16", param_dtype="bfloat16"))
TIMING = ("time_", "step_time", "tokens_per_s")


def _finite_rows(workdir: str) -> list[dict]:
  rows = read_metrics(workdir)
  for row in rows:
    for k, v in row.items():
      if isinstance(v, (int, float)) and not k.startswith(TIMING):
        assert math.isfinite(v), (row["step"], k, v)
  return rows


def test_bf16_logprobs_are_fp32_and_agree_with_fp32():
  fp32 = get_preset("tiny")
  graphdef32, params32 = transformer.init(fp32, seed=0)
  graphdef16, _ = transformer.init(fp32.replace(dtype="bfloat16", param_dtype="bfloat16"))
  params16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params32)
  rng = np.random.default_rng(0)
  prompt = jnp.asarray(rng.integers(3, 128, (4, 10)), jnp.int32)
  response = jnp.asarray(rng.integers(3, 128, (4, 12)), jnp.int32)
  valid, mask = jnp.ones((4, 10), bool), jnp.ones((4, 12), bool)
  lp32, ent32 = response_logprobs(graphdef32, params32, prompt, valid, response, mask)
  lp16, ent16 = response_logprobs(graphdef16, params16, prompt, valid, response, mask)
  assert lp16.dtype == ent16.dtype == jnp.float32
  assert float(jnp.abs(lp16 - lp32).max()) < 0.1
  assert float(jnp.abs(ent16 - ent32).max()) < 0.1


SFT_OVERRIDES = {"total_steps": 3, "eval_every": 3, "checkpoint_every": 3, "max_response_len": 12}


@pytest.fixture(scope="module")
def fp32_sft(tmp_path_factory):
  """(workdir, final state) of 3 fp32 SFT steps of the tiny model."""
  workdir = str(tmp_path_factory.mktemp("fp32_sft"))
  _, state, _ = train_sft(load_config("sft:tiny", SFT_OVERRIDES), workdir, progress=False)
  return workdir, state


def test_bf16_sft_trains_finite_with_fp32_moments_and_tracks_fp32(tmp_path, fp32_sft):
  fp32_dir, state32 = fp32_sft
  _, state16, _ = train_sft(load_config("sft:tiny", {**SFT_OVERRIDES, "model_overrides": BF16}),
                            str(tmp_path / "bf16"), progress=False)
  assert {x.dtype for x in jax.tree.leaves(state16.params)} == {jnp.dtype(jnp.bfloat16)}
  moments = [x for x in jax.tree.leaves(state16.opt_state) if x.ndim > 0]
  assert moments and {x.dtype for x in moments} == {jnp.dtype(jnp.float32)}
  rows32, rows16 = _finite_rows(fp32_dir), _finite_rows(str(tmp_path / "bf16"))
  for a, b in zip(rows32, rows16):
    for k in ("loss", "entropy"):
      np.testing.assert_allclose(b[k], a[k], rtol=3e-2, err_msg=f"step {a['step']}: {k}")
  moved = [np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max() for a, b in
           zip(jax.tree.leaves(state16.params), jax.tree.leaves(state32.params))]
  assert max(moved) < 0.05                      # bf16 weights stay next to the fp32 ones


def test_bf16_rl_run_is_finite_end_to_end(tmp_path):
  config = load_config("grpo:tiny", {"model_overrides": BF16, "rollout.num_samples": 4,
                                     "max_response_len": 12, "objective.entropy_coef": 0.05})
  train_rl(config, str(tmp_path), progress=False)
  rows = _finite_rows(str(tmp_path))
  assert rows[-1]["grad_norm"] > 0 and rows[-1]["updates_skipped_total"] == 0
  assert "pass@1" in rows[-1]


def test_matmul_dtype_override_reaches_a_policy_loaded_from_init_from(tmp_path, fp32_sft):
  """model_overrides.matmul_dtype (bf16 matmul inputs, fp32 weights and activations:
  models/dense.py) applies to an `init_from` checkpoint too, and is saved with the run."""
  sft = fp32_sft[0]
  config = load_config("grpo:tiny", {"init_from": sft, "total_steps": 1, "rollout.num_samples": 4,
                                     "max_response_len": 12, "objective.entropy_coef": 0.05})
  config.model_overrides.matmul_dtype = "bfloat16"
  config.model_overrides.hidden_size = 8      # a shape field: the checkpoint's own is kept
  train_rl(config, str(tmp_path / "rl"), progress=False)
  saved = read_model_config(str(tmp_path / "rl"))
  assert saved.matmul_dtype == "bfloat16" and saved.hidden_size == read_model_config(sft).hidden_size
  rows = _finite_rows(str(tmp_path / "rl"))
  assert rows[-1]["grad_norm"] > 0 and rows[-1]["updates_skipped_total"] == 0


def test_a_loaded_policy_adapted_to_a_config_equals_the_one_the_run_starts_from(fp32_sft):
  """adapt_policy(load_initial_policy(path), config) is initial_policy(config) without a
  second load: the compute dtype applied, the checkpoint's shape kept, the params shared."""
  sft = fp32_sft[0]
  config = load_config("grpo:tiny", {"init_from": sft})
  config.model_overrides.matmul_dtype = "bfloat16"
  config.model_overrides.hidden_size = 8      # a shape field: the checkpoint's own is kept
  loaded = load_initial_policy(sft)
  adapted = adapt_policy(loaded, config)
  assert adapted.config == initial_policy(config, None).config
  assert adapted.config.matmul_dtype == "bfloat16" and loaded.config.matmul_dtype is None
  assert adapted.config.hidden_size == loaded.config.hidden_size != 8
  assert adapted.params is loaded.params
