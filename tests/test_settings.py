"""Every registered component's settings are checked before it is built: a required setting
missing, an unknown one, one of the wrong type, or a value the component rejects is one
`ConfigError` line naming the component and the setting; the CLI prints it and exits 2
before the run directory exists (explore_rl/settings.py)."""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

from explore_rl import settings
from explore_rl.errors import ConfigError
from explore_rl.rewards.judges import JUDGES
from explore_rl.sampling.processors import SamplingConfig
from explore_rl.sampling.catalog import SAMPLERS
from explore_rl.tasks import TASKS
from explore_rl.tasks.curriculum import CURRICULA

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRIES = {"task": TASKS, "judge": JUDGES, "curriculum": CURRICULA, "sampler": SAMPLERS}
# What the trainer passes every sampler besides its own sampler_kwargs.
RUN_SETTINGS = {"sampler": {"sampling": SamplingConfig(), "prompt_len": 8}}
WRONG = ({"wrong": "type"}, 12345, "wrong", 1.5)  # the first one a setting does not accept


def _settings_of(kind):
  for name in REGISTRIES[kind].names():
    component = REGISTRIES[kind].get(name)
    for p in inspect.signature(component).parameters.values():
      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in \
          RUN_SETTINGS.get(kind, {}):
        yield kind, name, p


CASES = list(_settings_of("task")) + list(_settings_of("judge")) + \
    list(_settings_of("curriculum")) + list(_settings_of("sampler"))
REQUIRED = [c for c in CASES if c[2].default is c[2].empty]


def _build(kind, name, given):
  return REGISTRIES[kind].build(name, **{**RUN_SETTINGS.get(kind, {}), **given})


def _one_line(error) -> str:
  message = str(error.value)
  assert "\n" not in message
  return message


@pytest.mark.parametrize("kind, name, param", REQUIRED,
                         ids=[f"{k}-{n}-{p.name}" for k, n, p in REQUIRED])
def test_a_missing_required_setting_is_one_line(kind, name, param):
  others = {c[2].name: "placeholder" for c in REQUIRED if c[:2] == (kind, name)
            and c[2].name != param.name}
  with pytest.raises(ConfigError) as e:
    _build(kind, name, others)
  assert _one_line(e).startswith(f"{kind} {name!r} needs the setting {param.name!r} "
                                 "(its settings: ")


@pytest.mark.parametrize("kind, name, param", CASES,
                         ids=[f"{k}-{n}-{p.name}" for k, n, p in CASES])
def test_a_setting_of_the_wrong_type_is_one_line(kind, name, param):
  hints = settings._hints(REGISTRIES[kind].get(name))
  hint = hints.get(param.name, inspect.Parameter.empty)
  wrong = [w for w in WRONG if not settings.matches(w, hint)]
  if not wrong:
    pytest.skip(f"{param.name}: {hint} accepts any value")
  # The setting under test first, then the other required ones (their values unchecked).
  given = {param.name: wrong[0], **{c[2].name: "placeholder" for c in REQUIRED
                                    if c[:2] == (kind, name) and c[2].name != param.name}}
  with pytest.raises(ConfigError) as e:
    _build(kind, name, given)
  assert _one_line(e).startswith(f"{kind} {name!r}: setting {param.name!r} must be ")


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_an_unknown_setting_is_one_line_listing_the_valid_ones(kind):
  for name in REGISTRIES[kind].names():
    params = inspect.signature(REGISTRIES[kind].get(name)).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
      continue
    # From the signature, not REQUIRED: other test modules may register components later.
    required = {p.name: "placeholder" for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                and p.name not in RUN_SETTINGS.get(kind, {})}
    with pytest.raises(ConfigError) as e:
      _build(kind, name, {**required, "no_such_setting": 1})
    assert f"{kind} {name!r} " in _one_line(e) and "no_such_setting" in str(e.value)


def test_a_value_the_component_rejects_is_one_line():
  # LMJudge raises ValueError for a base_url without a model: a combination of settings.
  with pytest.raises(ConfigError, match=r"^judge 'lm_judge': ") as e:
    JUDGES.build("lm_judge", base_url="http://127.0.0.1:9")
  _one_line(e)


def test_matches_reads_the_annotations_configs_hold():
  assert settings.matches(3, float) and not settings.matches(True, int)
  assert settings.matches(None, int | None) and not settings.matches("x", int | None)
  assert settings.matches((1, 2), list[int]) and not settings.matches("ab", list[int])
  assert settings.matches({"a": 1}, dict) and not settings.matches([1], dict)


def _cli(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
  return subprocess.run([sys.executable, "-m", "explore_rl.cli", "train", *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300)


def test_optimizer_settings_are_checked():
  from explore_rl.training.state import optimizer_from_config
  with pytest.raises(ConfigError, match=r"^optimizer \(config.optim\): setting 'learning_rate' "
                     r"must be float, got 'fast' \(str\)$"):
    optimizer_from_config({"learning_rate": "fast"}, 10)
  with pytest.raises(ConfigError, match=r"^optimizer \(config.optim\) has no setting 'beta'"):
    optimizer_from_config({"learning_rate": 1e-3, "beta": 0.9}, 10)


@pytest.mark.parametrize("overrides, needle", [
    (["--config.judge=lm_judge", "--config.judge_kwargs.base_url=http://127.0.0.1:9"],
     "judge 'lm_judge': "),
    (["--config.task=countdown", "--config.task_kwargs.num_numbers=4"],
     "task 'countdown' has no setting 'num_numbers' (its settings: none)"),
    (["--config.rollout.sampler=sequential", "--config.rollout.sampler_kwargs.separator=3"],
     "sampler 'sequential': setting 'separator' must be str, got 3 (int)"),
    (["--config.optim.schedule=linear"],
     "optimizer (config.optim): unknown schedule 'linear'; valid: constant, cosine"),
])
def test_the_cli_prints_one_line_and_exits_2_before_the_workdir_exists(tmp_path, overrides,
                                                                        needle):
  workdir = tmp_path / "run"
  out = _cli("--config", "configs/grpo.py:tiny", "--workdir", str(workdir), *overrides)
  assert out.returncode == 2, out.stderr[-2000:]
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and needle in lines[0], out.stderr[-2000:]
  assert not (workdir / "config.json").exists()


def test_malformed_jsonl_lines_are_listed_without_a_traceback(tmp_path):
  data = tmp_path / "data.jsonl"
  data.write_text(json.dumps({"question": "1+1?", "answer": "2"}) + "\n{not json\n")
  out = _cli("--config", "configs/grpo.py:tiny", "--workdir", str(tmp_path / "run"),
             "--config.task=jsonl", f"--config.task_kwargs.path={data}")
  assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
  assert f"{data}:2: " in out.stderr


def test_a_mesh_that_does_not_fit_the_devices_is_one_line_before_the_workdir(tmp_path):
  out = _cli("--config", "configs/grpo.py:tiny", "--workdir", str(tmp_path / "run"),
             "--config.mesh.data=3", "--config.mesh.fsdp=1")
  assert out.returncode == 2, out.stderr[-2000:]
  assert out.stderr.strip().splitlines() == [
      "explore-rl: error: mesh {'data': 3, 'fsdp': 1, 'tensor': 1} does not divide 1 devices"]
  assert not (tmp_path / "run" / "config.json").exists()
