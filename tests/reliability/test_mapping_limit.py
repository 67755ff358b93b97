"""A process near `vm.max_map_count` keeps compiling when it frees old executables.

The suite's worker deaths (docs/testing.md): every XLA:CPU kernel holds memory mappings
while JAX's caches hold its executable; at the kernel's limit the next compile fails and
jaxlib 0.10.2 segfaults on that failure. Here plain mappings eat all but a few hundred of
the limit, then 300 distinct functions are compiled and kept, as a worker keeps its tests'
jits. Without a release the process dies (SIGSEGV, or an error once jaxlib raises); with
`executables.release_if_near_limit` between compiles it finishes.
"""
import os
import resource
import subprocess
import sys
import textwrap

import pytest

from explore_rl import executables

SCRIPT = textwrap.dedent("""
    import mmap, sys
    import jax, jax.numpy as jnp
    from explore_rl import executables
    release = sys.argv[1] == "release"
    limit = executables.mapping_limit()
    jax.jit(lambda x: x + 1)(jnp.ones(3)).block_until_ready()
    hold = []
    while executables.mappings_in_use() < limit - 400:
      room = limit - 400 - executables.mappings_in_use()
      hold += [mmap.mmap(-1, 4096) for _ in range(min(1000, max(1, room)))]
    keep = []
    for i in range(300):   # >= 3 mappings each: twice the room left
      if release:
        executables.release_if_near_limit((limit - 200) / limit)
      f = jax.jit(lambda x, i=i: jnp.tanh(x @ x.T + i).sum(0) * jnp.exp(x - i).mean())
      keep.append((f, f(jnp.ones((8, 8))).block_until_ready()))
    print("compiled", len(keep))
""")


def _no_core_file():
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the crash's core would be gigabytes


LIMIT = executables.mapping_limit()


@pytest.mark.slow
@pytest.mark.skipif(LIMIT is None, reason="no /proc/sys/vm/max_map_count")
@pytest.mark.skipif((LIMIT or 0) > 262_144, reason=f"vm.max_map_count {LIMIT}: filling it "
                    "would take a kernel file per mapping, up to gigabytes")
@pytest.mark.parametrize("release", ["release", "keep"])
def test_compiling_past_the_mapping_limit(release, tmp_path):
  env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
  proc = subprocess.run([sys.executable, "-c", SCRIPT, release], capture_output=True,
                        text=True, timeout=300, env=env, cwd=tmp_path,
                        preexec_fn=_no_core_file)
  if release == "release":
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "compiled 300" in proc.stdout
  else:
    assert proc.returncode != 0, proc.stdout
    assert "Cannot allocate memory" in proc.stderr, proc.stderr[-2000:]
