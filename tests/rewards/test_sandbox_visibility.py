"""What the sandbox's children can see: the project and its Python wherever they live, and
nothing else of the host's world-writable directories; the start-up self-test that refuses
a pool whose children cannot score.

The first test runs the pool from a copy of the project installed (as an editable path
in a virtualenv) under pytest's tmp_path, which lies under /tmp: the directory the
sandbox hides behind a private tmpfs.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import textwrap

import pytest

from explore_rl.sandbox import SandboxPool, SandboxUnavailable, self_test
from explore_rl.sandbox import probe_namespaces

REPO = pathlib.Path(__file__).resolve().parents[2]
HIDES_TMP = "--mount" in probe_namespaces()[0]
needs_mounts = pytest.mark.skipif(not HIDES_TMP, reason="no mount namespace on this platform")

# Run by the virtualenv under tmp_path: scores through the copy's own shared pool.
_PROBE = textwrap.dedent("""
    import json, os, sys
    import explore_rl
    from explore_rl.tasks import get_task, sample_problems, scoring_pool
    out = {"package": os.path.dirname(explore_rl.__file__), "prefix": sys.prefix}
    task = get_task("reasoning_gym:countdown")
    p = sample_problems(task, seed=3, num=1, difficulty=0.0)[0]
    out["reward"] = task.score(p, p.solution).reward
    pool = scoring_pool()
    out["mounted"] = pool.isolation["mounted"]
    out["marker"] = pool.call("explore_rl.sandbox.server:can_import", name="marker_in_venv").value
    for name, path in (("project", os.path.join(out["package"], "pwned")),
                       ("tmp", "/tmp/" + os.environ["TAG"])):
      r = pool.call("timeit:timeit", stmt=f"open({path!r}, 'w').write('x')", number=1)
      out[name] = [r.status, os.path.exists(path)]
    print(json.dumps(out))
""")


def _venv_under(root: pathlib.Path) -> pathlib.Path:
  """A virtualenv at root/venv whose packages are this test run's (a .pth file) plus a
  module of its own, and a copy of the project at root/project on its path, as an
  editable install puts it. Returns its python."""
  project = root / "project"
  shutil.copytree(REPO / "explore_rl", project / "explore_rl",
                  ignore=shutil.ignore_patterns("__pycache__"))
  venv = root / "venv"
  subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
  python = venv / "bin" / "python"
  site = pathlib.Path(subprocess.run(
      [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
      check=True, capture_output=True, text=True).stdout.strip())
  (site / "marker_in_venv.py").write_text("VALUE = 1\n")
  # The copy first, so `explore_rl` resolves to it and not to this checkout.
  (site / "00_project.pth").write_text(f"{project}\n{sysconfig.get_paths()['purelib']}\n")
  return python


@needs_mounts
def test_a_project_installed_under_tmp_scores_in_the_sandbox(tmp_path):
  pytest.importorskip("reasoning_gym")
  assert str(tmp_path).startswith("/tmp/")  # the directory the sandbox hides
  python = _venv_under(tmp_path)
  tag = f"sandbox-visibility-{os.getpid()}"
  env = {**os.environ, "TAG": tag, "PYTHONPATH": ""}
  r = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, env=env,
                     cwd=tmp_path, timeout=240)
  assert r.returncode == 0, r.stderr[-2000:]
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out["package"] == str(tmp_path / "project" / "explore_rl")
  assert out["prefix"] == str(tmp_path / "venv")
  assert out["reward"] == 1.0  # a correct answer scores through the copy's pool
  assert out["marker"] is True  # the virtualenv's own site-packages is visible
  for where in ("project", "venv"):
    assert f"{tmp_path / where} (needed by Python, bound back read-only)" in out["mounted"]
  # The project is read-only to the children; their /tmp is not the host's.
  assert out["project"][1] is False and out["project"][0] == "error"
  assert out["tmp"] == ["ok", False] and not os.path.exists(f"/tmp/{tag}")


def test_a_library_the_children_cannot_import_refuses_the_pool(tmp_path, monkeypatch):
  (tmp_path / "only_in_this_process.py").write_text("VALUE = 1\n")
  monkeypatch.syspath_prepend(str(tmp_path))  # the host imports it; the server does not
  with pytest.raises(SandboxUnavailable, match=r"cannot import only_in_this_process .*"
                     + str(tmp_path)) as e:
    SandboxPool(preload=["only_in_this_process"]).call("builtins:dict")
  assert "\n" not in str(e.value)


def test_a_library_missing_on_the_host_too_is_not_configured():
  with SandboxPool(preload=["no_such_library_anywhere"]) as pool:
    assert pool.call("builtins:dict", a=2).value == {"a": 2}


@needs_mounts
def test_a_hidden_library_path_refuses_the_pool(tmp_path, monkeypatch):
  hidden = tmp_path / "site-packages" / "json"
  hidden.mkdir(parents=True)
  real = self_test.module_location
  monkeypatch.setattr(self_test, "module_location",
                      lambda name: str(hidden) if name == "json" else real(name))
  with pytest.raises(SandboxUnavailable, match=rf"cannot read {hidden} \(json\): hidden by "
                     r"the sandbox's private mounts \(mounted: /tmp"):
    SandboxPool(preload=["json"]).call("builtins:dict")


@pytest.mark.parametrize("check, why", [
    ("builtins:int", r"builtins:int does not score 1.0 \(0\)"),
    ("no_such_module:score", r"no_such_module:score does not score 1.0 \(error: scorer: "
                             r"ModuleNotFoundError"),
])
def test_a_check_that_does_not_score_one_refuses_the_pool(check, why):
  pool = SandboxPool(checks=[check])
  with pytest.raises(SandboxUnavailable, match="refused to start: a known-correct answer of "
                     + why):
    pool.call("builtins:dict")
  assert pool._proc is None  # the refused server is gone


def test_failures_name_their_fault():
  with SandboxPool(deadline_s=2.0, cpu_s=1.0) as pool:
    # timeit runs a statement: stand-ins for scorers that run what an answer says.
    crash, missing, hang = pool.map("timeit:timeit", [
        {"stmt": "raise ValueError('bad answer')", "number": 1},
        {"stmt": "import no_such_module_here", "number": 1},  # raised by the answer: its fault
        {"stmt": "while True: pass", "number": 1}])
    unknown = pool.call("no_such_module:score")
  assert (crash.status, crash.fault) == ("error", "answer")
  assert (missing.status, missing.fault) == ("error", "answer")
  assert (hang.status, hang.fault) == ("timeout", "answer")
  assert (unknown.status, unknown.fault) == ("error", "infrastructure")
  assert unknown.reason.startswith("scorer: ModuleNotFoundError")
