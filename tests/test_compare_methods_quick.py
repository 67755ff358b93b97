"""experiments/compare_methods.py --quick: two methods from the quick prior, a report."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_compare_methods_quick_writes_a_report(tmp_path):
  out = subprocess.run([sys.executable, "experiments/compare_methods.py", "--quick",
                        "--methods", "grpo,polyepo", "--out", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env={**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""})
  assert out.returncode == 0, out.stderr[-3000:]
  report = open(tmp_path / "report.md").read()
  assert "grpo" in report and "polyepo" in report and "SFT prior" in report
