"""`make demo`'s pipeline (SFT -> GRPO, Poly-EPO from it -> report) on the tiny variants."""
import os

from explore_rl import demo


def test_demo_pipeline_writes_report_and_plots(tmp_path, capsys):
  demo.main(["--workdir", str(tmp_path), "--smoke"])
  report = (tmp_path / "report.md").read_text()
  assert "| SFT prior |" in report and "| GRPO |" in report and "Poly-EPO" in report
  assert "pass@4" in report   # the tiny variants evaluate 4 samples per prompt
  for png in ("reward.png", "entropy.png", "pass_at_k.png"):
    assert os.path.getsize(tmp_path / png) > 1000
  assert "explore_rl report" in capsys.readouterr().out
