"""executables: compiled XLA:CPU kernels hold memory mappings until JAX's caches let go."""
import jax
import jax.numpy as jnp
import pytest

from explore_rl import executables


def _compile(n: int, offset: float):
  fns = [jax.jit(lambda x, i=i: jnp.tanh(x @ x.T + i + offset).sum(0)) for i in range(n)]
  for f in fns:
    f(jnp.ones((16, 16))).block_until_ready()
  return fns


def test_the_count_is_the_kernels_list_of_mappings():
  with open("/proc/self/maps") as f:
    listed = len(f.readlines())
  assert abs(executables.mappings_in_use() - listed) < 16  # the reads allocate in between
  assert executables.mapping_limit() >= 65530 or executables.mapping_limit() > 0


def test_compiled_kernels_hold_mappings_until_the_caches_are_cleared():
  # Functions kept alive, like a worker's module-level jits: only clearing the caches
  # frees their executables.
  executables.release_if_near_limit(fraction=0.0)
  before = executables.mappings_in_use()
  fns = _compile(40, 0.5)
  grown = executables.mappings_in_use() - before
  assert grown >= 40, grown  # at least one mapping per executable
  assert not executables.release_if_near_limit(fraction=1.0)  # far from the limit: kept
  assert executables.mappings_in_use() - before >= grown - 3
  assert fns[0]._cache_size() == 1
  assert executables.release_if_near_limit(fraction=0.0)
  assert executables.mappings_in_use() - before < grown / 2
  assert fns[0]._cache_size() == 0  # compiles again on its next call
  assert float(fns[0](jnp.ones((16, 16)))[0]) == pytest.approx(16.0, rel=1e-6)  # 16 tanh(16.5)
