"""The package layers (docs/design.md): a layer imports only the layers below it.

  objectives, models, tasks  ->  sampling, rewards, eval  ->  training  ->  cli, experiments

Each package is imported, with all its modules, in a fresh interpreter; the
modules of the packages it must not depend on must then be absent from sys.modules.
"""
import subprocess
import sys

import pytest

FORBIDDEN = {
    "explore_rl.objectives": ["models", "sampling", "eval", "rewards", "tasks", "training"],
    "explore_rl.models": ["objectives", "sampling", "eval", "rewards", "tasks", "training"],
    "explore_rl.tasks": ["objectives", "models", "sampling", "eval", "rewards", "training"],
    "explore_rl.sampling": ["eval", "rewards", "training"],
    "explore_rl.rewards": ["sampling", "eval", "training"],
    "explore_rl.eval": ["training"],
    "explore_rl.bandits": ["sampling", "eval", "rewards", "training"],
    "explore_rl.sandbox": ["objectives", "models", "tasks", "sampling", "eval", "rewards",
                           "training"],
}

SCRIPT = """
import importlib, pkgutil, sys
package = importlib.import_module({package!r})
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
  importlib.import_module(info.name)
forbidden = {forbidden!r}
loaded = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print(",".join(loaded))
"""


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_no_higher_layer(package):
  forbidden = [f"explore_rl.{name}" for name in FORBIDDEN[package]]
  out = subprocess.run([sys.executable, "-c", SCRIPT.format(package=package,
                                                            forbidden=forbidden)],
                       capture_output=True, text=True, timeout=300,
                       env={"JAX_PLATFORMS": "cpu", "PATH": ""})
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == "", f"{package} imports {out.stdout.strip()}"
