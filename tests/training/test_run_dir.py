"""One owner and one config per run directory, secrets kept out of run files, and torn
metrics lines repaired on resume."""
from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import UserError
from explore_rl.metrics_log import MetricsWriter, read_metrics
from explore_rl.models.config import get_preset
from explore_rl.training.run_dir import find_secrets, prepare_run_dir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def model_for(config):
  return get_preset(config.model.preset, vocab_size=64, **config.model_overrides)


def snapshot(directory):
  """{relative path: (bytes, mtime_ns)} of every file but the lock (it records its pid)."""
  out = {}
  for root, _, files in os.walk(directory):
    for name in files:
      path = os.path.join(root, name)
      if name != ".lock":
        out[os.path.relpath(path, directory)] = (open(path, "rb").read(), os.stat(path).st_mtime_ns)
  return out


def finished_run(workdir, spec="grpo:tiny", **overrides):
  """A workdir as a finished run leaves it: run files, metrics, a checkpoint file."""
  config = load_config(spec, overrides)
  with prepare_run_dir(str(workdir), config, model_for(config)):
    pass
  os.makedirs(workdir / "checkpoints" / "2")
  (workdir / "checkpoints" / "2" / "data").write_bytes(b"weights")
  (workdir / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
  return config


def test_fresh_run_writes_private_run_files(tmp_path):
  config = load_config("grpo:tiny")
  with prepare_run_dir(str(tmp_path / "run"), config, model_for(config)) as run:
    assert not run.resumed
  stored = json.load(open(tmp_path / "run" / "config.json"))
  assert stored["objective"]["advantage"] == "grpo" and stored["model"]["preset"] == "tiny"
  assert json.load(open(tmp_path / "run" / "model.json"))["vocab_size"] == 64
  for name in ("config.json", "model.json"):
    assert stat.S_IMODE(os.stat(tmp_path / "run" / name).st_mode) == 0o600


LOCK_HOLDER = textwrap.dedent("""
    import sys
    from explore_rl.config_files import load_config
    from explore_rl.training.run_dir import prepare_run_dir
    run = prepare_run_dir(sys.argv[1], load_config("grpo:tiny"), None)
    print("locked", flush=True)
    sys.stdin.read()  # Hold the lock until the test closes our stdin.
    run.close()
""")


def test_second_process_on_a_workdir_fails_at_once(tmp_path):
  workdir = str(tmp_path / "run")
  env = {**os.environ, "PYTHONPATH": REPO}
  holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, workdir], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
  try:
    assert holder.stdout.readline().strip() == "locked"
    second = subprocess.run(
        [sys.executable, "-c", LOCK_HOLDER, workdir], input="", capture_output=True, text=True,
        env=env, cwd=REPO, timeout=60)
    assert second.returncode != 0
    last = second.stderr.strip().splitlines()[-1]
    assert f"is in use by another run (pid {holder.pid})" in last
    with pytest.raises(UserError, match=f"in use by another run \\(pid {holder.pid}\\)"):
      prepare_run_dir(workdir, load_config("grpo:tiny"), None)  # In this process too.
  finally:
    holder.communicate("", timeout=60)
  assert holder.returncode == 0
  prepare_run_dir(workdir, load_config("grpo:tiny"), None).close()  # Free again.


def test_lock_is_held_for_the_life_of_the_handle(tmp_path):
  config = load_config("grpo:tiny")
  run = prepare_run_dir(str(tmp_path), config, None)
  with pytest.raises(UserError, match="in use by another run"):
    prepare_run_dir(str(tmp_path), config, None)
  run.close()
  with prepare_run_dir(str(tmp_path), config, None) as again:
    assert again.resumed


def test_other_model_on_a_finished_run_is_refused_before_any_file_changes(tmp_path):
  workdir = tmp_path / "run"
  finished_run(workdir)
  before = snapshot(workdir)
  small = load_config("grpo:tiny", {"model.preset": "small"})
  with pytest.raises(UserError) as e:
    prepare_run_dir(str(workdir), small, model_for(small), allow_method_change=True)
  message = str(e.value)
  assert "\n" not in message and 'model.preset: "tiny" -> "small"' in message
  assert "another model or task" in message and "new --workdir" in message
  assert snapshot(workdir) == before
  # The model config alone (e.g. an init_from checkpoint of another size) is enough.
  config = load_config("grpo:tiny")
  wider = model_for(config).replace(num_hidden_layers=model_for(config).num_hidden_layers + 1)
  with pytest.raises(UserError, match="model.json:num_hidden_layers"):
    prepare_run_dir(str(workdir), config, wider, allow_method_change=True)
  with pytest.raises(UserError, match="task"):
    prepare_run_dir(str(workdir), load_config("grpo:tiny", {"task": "jsonl"}), model_for(config))
  assert snapshot(workdir) == before
  prepare_run_dir(str(workdir), config, model_for(config)).close()  # The lock was released.


def test_other_method_is_refused_unless_allowed(tmp_path):
  workdir = tmp_path / "run"
  finished_run(workdir)
  before = snapshot(workdir)
  rloo = load_config("grpo:tiny", {"objective.advantage": "rloo"})
  with pytest.raises(UserError) as e:
    prepare_run_dir(str(workdir), rloo, model_for(rloo))
  assert 'objective.advantage: "grpo" -> "rloo"' in str(e.value)
  assert "--allow_method_change" in str(e.value) and "\n" not in str(e.value)
  polyepo = load_config("polyepo:tiny")
  with pytest.raises(UserError, match="objective.advantage.*and \\d+ more"):
    prepare_run_dir(str(workdir), polyepo, model_for(polyepo))
  assert snapshot(workdir) == before
  with prepare_run_dir(str(workdir), rloo, model_for(rloo), allow_method_change=True) as run:
    assert run.resumed
  assert json.load(open(workdir / "config.json"))["objective"]["advantage"] == "rloo"


def test_safe_keys_may_change_on_resume(tmp_path):
  workdir = tmp_path / "run"
  finished_run(workdir)
  longer = load_config("grpo:tiny", {"total_steps": 10, "eval_every": 5, "checkpoint_every": 5,
                                     "keep_checkpoints": 1, "eval.num_prompts": 8})
  prepare_run_dir(str(workdir), longer, model_for(longer)).close()
  assert json.load(open(workdir / "config.json"))["total_steps"] == 10


def test_write_false_leaves_the_run_files_to_the_trainer(tmp_path):
  workdir = tmp_path / "run"
  finished_run(workdir)
  before = snapshot(workdir)
  longer = load_config("grpo:tiny", {"total_steps": 10})
  with prepare_run_dir(str(workdir), longer, model_for(longer), write=False) as run:
    assert snapshot(workdir) == before  # e.g. until the checkpoint restored.
    run.write_run_files()
  assert json.load(open(workdir / "config.json"))["total_steps"] == 10


def test_api_key_in_config_is_refused_and_never_written(tmp_path):
  key = "sk-test-4f9a8b7c6d5e"
  config = load_config("grpo:tiny", {"judge": "lm_judge"})
  config.judge_kwargs = {"base_url": "http://127.0.0.1:1/v1", "api_key": key}
  assert find_secrets(config) == ["judge_kwargs.api_key"]
  with pytest.raises(UserError) as e:
    prepare_run_dir(str(tmp_path / "fresh"), config, model_for(config))
  assert "judge_kwargs.api_key" in str(e.value) and "api_key_env" in str(e.value)
  assert key not in str(e.value)
  assert not (tmp_path / "fresh").exists()  # No partial workdir.
  workdir = tmp_path / "run"
  finished_run(workdir)
  with pytest.raises(UserError, match="config holds a secret"):
    prepare_run_dir(str(workdir), config, model_for(config), allow_method_change=True)
  for root, _, files in os.walk(tmp_path):
    for name in files:
      assert key.encode() not in open(os.path.join(root, name), "rb").read()
  # The supported way: the variable's name, which is no secret.
  config.judge_kwargs = {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "OPENAI_API_KEY"}
  assert find_secrets(config) == []


@pytest.mark.parametrize("key", ["api_key", "apiKey", "hf_token", "token", "password",
                                 "client_secret", "secret_key", "access_token"])
def test_secret_names(key):
  assert find_secrets({"judge_kwargs": {key: "x"}}) == [f"judge_kwargs.{key}"]


@pytest.mark.parametrize("key", ["max_tokens", "eos_token", "api_key_env", "tokenizer"])
def test_not_secret_names(key):
  assert find_secrets({"judge_kwargs": {key: "x"}}) == []


def write_rows(workdir, steps):
  writer = MetricsWriter(str(workdir), tensorboard=False, progress=False)
  for step in steps:
    writer.write(step, {"reward_mean": 0.5})
  writer.close()


@pytest.mark.parametrize("tail", [b'{"step": 3, "rew', b"\x00" * 40, b'{"step": 3, "x"\n'])
def test_torn_last_metrics_line_is_repaired_on_reopen(tmp_path, caplog, tail):
  write_rows(tmp_path, [1, 2])
  with open(tmp_path / "metrics.jsonl", "ab") as f:
    f.write(tail)  # A crash mid-write.
  with caplog.at_level(logging.WARNING, logger="explore_rl.metrics_log"):
    write_rows(tmp_path, [3, 4])  # The resumed run.
  assert "metrics.jsonl:3: removed a torn last line" in caplog.text
  assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2, 3, 4]
  assert len(open(tmp_path / "metrics.jsonl").read().splitlines()) == 4


def test_a_resume_drops_the_killed_tail_so_each_step_is_written_once(tmp_path, caplog):
  write_rows(tmp_path, [1, 2, 3, 4, 5, 6])  # killed after step 6, last checkpoint at 4
  with caplog.at_level(logging.WARNING, logger="explore_rl.metrics_log"):
    writer = MetricsWriter(str(tmp_path), tensorboard=False, progress=False, initial_step=4)
    for step in (5, 6, 7):
      writer.write(step, {"reward_mean": 0.75})
    writer.close()
  assert "dropped 2 rows past step 4" in caplog.text
  raw = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in raw] == [1, 2, 3, 4, 5, 6, 7]  # the file itself, not read_metrics
  assert [r["reward_mean"] for r in raw] == [0.5] * 4 + [0.75] * 3
  # A run killed before its first checkpoint starts again from 0: nothing of it is kept.
  MetricsWriter(str(tmp_path), tensorboard=False, progress=False, initial_step=0).close()
  assert open(tmp_path / "metrics.jsonl").read() == ""


def test_a_resume_at_the_last_row_rewrites_nothing(tmp_path):
  write_rows(tmp_path, [1, 2])
  before = os.stat(tmp_path / "metrics.jsonl").st_ino
  MetricsWriter(str(tmp_path), tensorboard=False, progress=False, initial_step=2).close()
  assert os.stat(tmp_path / "metrics.jsonl").st_ino == before


def test_complete_last_row_without_newline_is_kept(tmp_path, caplog):
  write_rows(tmp_path, [1])
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 2, "reward_mean": 1.0}')
  with caplog.at_level(logging.WARNING, logger="explore_rl.metrics_log"):
    write_rows(tmp_path, [3])
  assert "added the missing newline" in caplog.text
  assert [r["step"] for r in read_metrics(str(tmp_path))] == [1, 2, 3]


def test_read_metrics_names_the_bad_line(tmp_path, caplog):
  (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}{"step": 3}\n[4]\n'
                                          '{"step": 5}\n{"step": 6, "par')
  with pytest.raises(UserError, match=r"metrics.jsonl:2: not a metrics row"):
    read_metrics(str(tmp_path))
  with caplog.at_level(logging.WARNING, logger="explore_rl.metrics_log"):
    rows = read_metrics(str(tmp_path), strict=False)
  assert [r["step"] for r in rows] == [1, 5]  # The unterminated last line: a write in progress.
  assert "metrics.jsonl:2:" in caplog.text and "metrics.jsonl:3:" in caplog.text
