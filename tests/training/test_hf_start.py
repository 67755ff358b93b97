"""RL from an imported Hugging Face checkpoint (configs/hf_grpo.py:tiny), and the run
keeps the checkpoint's tokenizer for eval/sample/resume."""
import pytest

from explore_rl.config_files import load_config
from explore_rl.models import transformer
from explore_rl.models.config import get_preset
from explore_rl.models.hf_export import save_hf_checkpoint, write_char_tokenizer
from explore_rl.models.chat_tokenizer import CheckpointTokenizer
from explore_rl.models.tokenizer import CharTokenizer
from explore_rl.metrics_log import read_metrics
from explore_rl.training.rl import train_rl
from explore_rl.training.policy_loader import load_policy


def test_rl_starts_from_hf_checkpoint_and_keeps_its_tokenizer(tmp_path, monkeypatch):
  char = CharTokenizer()
  graphdef, params = transformer.init(get_preset("tiny", vocab_size=char.vocab_size), seed=4)
  ckpt = str(tmp_path / "hf")
  save_hf_checkpoint(ckpt, graphdef, params, model_type="qwen2")
  write_char_tokenizer(ckpt)
  monkeypatch.setenv("EXPLORE_RL_HF_CHECKPOINT", ckpt)
  config = load_config("hf_grpo:tiny")
  assert config.init_from == ckpt
  workdir = str(tmp_path / "run")
  train_rl(config, workdir, progress=False)
  assert [r["step"] for r in read_metrics(workdir)] == [1, 2]
  policy = load_policy(workdir)
  tokenizer, model_config = policy.tokenizer, policy.config
  assert isinstance(tokenizer, CheckpointTokenizer)
  assert model_config.attention_bias   # qwen2 export carries q/k/v biases
  text = "sum 12 parts 2,3,5:"
  assert tokenizer.encode(text) == char.encode(text)
  assert tokenizer.decode(char.encode(text, eos=True) + [5]) == text


def test_hf_config_tiny_without_checkpoint_trains_from_scratch(monkeypatch):
  monkeypatch.delenv("EXPLORE_RL_HF_CHECKPOINT", raising=False)
  assert load_config("hf_grpo:tiny").init_from == ""
  with pytest.raises(ValueError, match="unknown config arg"):
    load_config("hf_grpo:huge")
