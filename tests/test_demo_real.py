"""`make demo-real` (explore_rl/demo_real.py) end to end on a tiny GGUF model with a chat
template (tests/models/conftest.py writes it): both methods train, and the report holds
the table, the plots and three samples per method for one prompt."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest.importorskip("gguf", reason="needs gguf (pip install -c requirements.lock gguf)")


def _write_gguf(path) -> str:
  spec = importlib.util.spec_from_file_location(
      "gguf_writer", pathlib.Path(__file__).parent / "models" / "conftest.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.write_gguf(path)


@pytest.mark.slow
def test_demo_real_trains_both_methods_and_writes_the_report(tmp_path, capsys):
  from explore_rl import demo_real
  model = _write_gguf(tmp_path / "tiny.gguf")
  out = tmp_path / "demo-real"
  demo_real.main(["--workdir", str(out), "--init_from", f"gguf:{model}",
                  "--task", "arithmetic-d0", "--compile_cache", "off"])
  report = (out / "report.md").read_text()
  assert "| GRPO |" in report and "| Poly-EPO |" in report
  assert "The untrained model on the same problems: pass@1" in report
  # arithmetic's chat answer is a number: its "strategies" are said to be spellings.
  assert "distinct strategies count spellings of that answer, not strategies" in report
  for png in ("reward.png", "entropy.png", "pass_at_k.png"):
    assert (out / png).stat().st_size > 1000
  section = report.split("## Three samples per method, same prompt")[1]
  assert "What is " in section                       # the prompt, once
  for label in ("base model", "GRPO", "Poly-EPO"):
    part = section.split(f"### {label}\n")[1].split("### ")[0]
    assert [f"{j}. (" in part for j in (1, 2, 3)] == [True] * 3
  assert "Total wall time" in report
