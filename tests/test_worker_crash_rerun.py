"""A test whose pytest-xdist worker dies runs once more; a second death fails the run.

Checks tests/conftest.py's `pytest_handlecrashitem` on a two-test suite in a subprocess
whose tests kill their own worker with SIGSEGV, as XLA:CPU has (docs/testing.md).
"""
import os
import pathlib
import subprocess
import sys
import textwrap

SUITE_CONFTEST = pathlib.Path(__file__).resolve().parent / "conftest.py"

CONFTEST = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("suite_conftest", {str(SUITE_CONFTEST)!r})
suite = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite)
pytest_handlecrashitem = suite.pytest_handlecrashitem
pytest_report_teststatus = suite.pytest_report_teststatus
pytest_terminal_summary = suite.pytest_terminal_summary
"""

TESTS = """
import os, pathlib, signal

def _die_unless_marked(name):
  marker = pathlib.Path(os.environ["MARKERS"]) / name
  if not marker.exists():
    marker.touch()
    os.kill(os.getpid(), signal.SIGSEGV)

def test_dies_once():
  _die_unless_marked("once")

def test_dies_twice():
  _die_unless_marked("twice-1")
  _die_unless_marked("twice-2")

def test_lives():
  assert True
"""


def _run(tmp_path, select):
  (tmp_path / "conftest.py").write_text(textwrap.dedent(CONFTEST))
  (tmp_path / "test_dying.py").write_text(textwrap.dedent(TESTS))
  markers = tmp_path / "markers"
  markers.mkdir()
  env = dict(os.environ, MARKERS=str(markers), PYTHONFAULTHANDLER="0")
  return subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
                         "-k", select, str(tmp_path)], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=300)


def test_a_test_whose_worker_dies_once_passes_on_its_rerun_and_is_listed(tmp_path):
  proc = _run(tmp_path, "dies_once or lives")
  assert proc.returncode == 0, proc.stdout[-3000:]
  assert "2 passed, 1 rerun" in proc.stdout
  assert "worker died running test_dying.py::test_dies_once" in proc.stdout


def test_a_test_whose_worker_dies_twice_fails_the_run(tmp_path):
  proc = _run(tmp_path, "dies_twice")
  assert proc.returncode == 1, proc.stdout[-3000:]
  assert "1 failed, 1 rerun" in proc.stdout
  assert proc.stdout.count("worker died running test_dying.py::test_dies_twice") == 2
