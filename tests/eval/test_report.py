"""The report draws the off-policy plots (staleness, mismatch KL) for runs that logged them."""
import json

from explore_rl.eval.report import write_report


def _run(path, **extra):
  path.mkdir()
  rows = [{"step": s, "reward_mean": 0.1 * s, "rollout_entropy": 1.0, **extra} for s in (1, 2)]
  rows[-1].update({"pass@1": 0.5, "pass@1_stderr": 0.1, "pass@2": 0.7, "pass@2_stderr": 0.1,
                   "distinct_strategies": 1.5, "eval_entropy": 0.9})
  (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  return str(path)


def test_report_plots_staleness_and_mismatch_only_when_logged(tmp_path):
  sync = {"sync": _run(tmp_path / "sync")}
  text = open(write_report(str(tmp_path / "a"), sync, wall={}, intro="")).read()
  assert "staleness.png" not in text and not (tmp_path / "a" / "staleness.png").exists()
  runs = {**sync, "k=1": _run(tmp_path / "k1", **{"rollout/staleness_mean": 1.0,
                                                  "mismatch/kl": 0.02})}
  text = open(write_report(str(tmp_path / "b"), runs, wall={}, intro="")).read()
  for stem in ("staleness", "mismatch_kl"):
    assert f"({stem}.png)" in text and (tmp_path / "b" / f"{stem}.png").stat().st_size > 1000
