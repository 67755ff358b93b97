"""explore_rl/compile_cache.py: which directory wins, the lock is on, a second process
loads what the first compiled. (The suite itself runs with the cache off: tests/conftest.py.)"""
import os
import subprocess
import sys


from explore_rl import compile_cache

_PROGRAM = """
import jax, jax.numpy as jnp
from jax._src import monitoring
from explore_rl import compile_cache
hits = []
monitoring.register_event_listener(
    lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None)
compile_cache.enable({path!r}, min_compile_secs=0.0)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum() * 3.0 + 1.25)
print(float(f(jnp.ones((7, 5)))), len(hits), jax.config.jax_compilation_cache_max_size)
"""


def test_precedence_explicit_then_environment_then_default(monkeypatch, tmp_path):
  monkeypatch.delenv(compile_cache.ENV, raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert compile_cache.resolve() == str(tmp_path / "xdg" / "explore_rl" / "jax")
  assert compile_cache.resolve(default="d") == os.path.abspath("d")
  monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "env"))
  assert compile_cache.resolve(default="d") == str(tmp_path / "env")
  assert compile_cache.resolve("explicit", default="d") == os.path.abspath("explicit")
  assert compile_cache.resolve("off") is None
  monkeypatch.setenv(compile_cache.ENV, "off")
  assert compile_cache.resolve(default="d") is None


def test_a_second_process_loads_the_compiled_function(tmp_path):
  env = {k: v for k, v in os.environ.items() if k != compile_cache.ENV}
  program = _PROGRAM.format(path=str(tmp_path / "cache"))
  runs = [subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                         text=True, check=True).stdout.split() for _ in range(2)]
  assert runs[0][0] == runs[1][0]
  assert int(runs[0][1]) == 0 < int(runs[1][1])   # misses, then hits
  # JAX takes its file lock only when eviction is on (a size bound).
  assert int(runs[0][2]) == compile_cache.MAX_BYTES > 0
  assert any(p.name.endswith("-cache") for p in (tmp_path / "cache").iterdir())


def test_entries_of_an_unbounded_cache_get_access_times(tmp_path):
  # Written before the size bound: entries without "-atime" files, which JAX's eviction
  # scan reads on every write.
  (tmp_path / "jit_f-abc-cache").write_bytes(b"x")
  (tmp_path / "jit_g-def-cache").write_bytes(b"y")
  (tmp_path / "jit_g-def-atime").write_bytes((7).to_bytes(8, "little"))
  compile_cache._backfill_access_times(str(tmp_path))
  assert (tmp_path / "jit_f-abc-atime").stat().st_size == 8
  assert int.from_bytes((tmp_path / "jit_g-def-atime").read_bytes(), "little") == 7
