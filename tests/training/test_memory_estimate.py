"""The peak-memory estimate made before the first step, and the refusal of a run that
cannot fit."""
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.models.config import get_preset
from explore_rl.training.memory import GiB, check_fits, estimate_peak_bytes

SMOLLM2 = get_preset("base").replace(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                                     num_hidden_layers=30, num_attention_heads=9,
                                     num_key_value_heads=3, tie_word_embeddings=True)


def test_lora_and_remat_lower_their_parts():
  config = load_config("smollm2_grpo")
  full = estimate_peak_bytes(config, SMOLLM2)
  assert 130e6 < SMOLLM2.num_params() < 140e6
  assert full["optimizer"] == 8 * SMOLLM2.num_params()
  adapted = estimate_peak_bytes(config, SMOLLM2.replace(lora_rank=16))
  assert adapted["optimizer"] < full["optimizer"] / 20
  remat = estimate_peak_bytes(config, SMOLLM2.replace(remat=True))
  assert remat["activations"] < full["activations"] / 3
  config.learner.micro_batches *= 2
  assert estimate_peak_bytes(config, SMOLLM2)["activations"] < full["activations"]


def test_a_run_that_cannot_fit_is_refused_with_what_to_lower():
  config = load_config("smollm2_grpo")
  assert check_fits(config, SMOLLM2, (64 * GiB, "test"))["peak"] < 16 * GiB
  with pytest.raises(ConfigError, match=r"needs about .* GiB .* more than the 1\.0 GiB test: "
                                        r"raise learner.micro_batches"):
    check_fits(config, SMOLLM2, (1.0 * GiB, "test"))
  config.rollout.num_samples = 512
  config.learner.micro_batches = 512
  with pytest.raises(ConfigError, match="lower rollout.prompts_per_step"):
    check_fits(config, SMOLLM2, (8.0 * GiB, "test"))
