"""The RL trainer's memory of the previous evaluation (learning progress across a resume)."""
import json

from explore_rl.training.rl import previous_eval_counts


def test_previous_eval_counts_reads_the_last_eval_at_or_before_the_resume_step(tmp_path):
  rows = [{"step": 1, "loss": 0.1},
          {"step": 2, "eval_num_correct": [1, 2], "a/eval_num_correct": [1], "pass@1": 0.3},
          {"step": 3, "loss": 0.2},
          {"step": 4, "eval_num_correct": [3, 4], "pass@1": 0.5}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  assert previous_eval_counts(str(tmp_path), 3) == {"eval_num_correct": [1, 2],
                                                   "a/eval_num_correct": [1]}
  assert previous_eval_counts(str(tmp_path), 4) == {"eval_num_correct": [3, 4]}
  assert previous_eval_counts(str(tmp_path), 1) == {}
  assert previous_eval_counts(str(tmp_path), 0) == {}            # a fresh run
  assert previous_eval_counts(str(tmp_path / "none"), 5) == {}   # no metrics yet
