"""Test-wide JAX set-up: 8 virtual CPU devices and a persistent compilation cache.

XLA_FLAGS must be set before JAX initialises its backends, hence here at import.
Single-device code runs on device 0; multi-device tests use all 8.
"""
import os
import pathlib

# LLVM optimisation level 0: the suite's shapes are tiny, so compiling is what costs (-30%
# backend compile time on tests/training/test_two_policy.py, cold cache, 2-core CPU).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                      "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from explore_rl import compile_cache  # noqa: E402

# One cache for the workers and the experiments they start as subprocesses (which get
# it through $EXPLORE_RL_JAX_CACHE); its file lock keeps concurrent writers safe.
os.environ.setdefault(compile_cache.ENV,
                      str(pathlib.Path(__file__).resolve().parent.parent / ".jax_cache"))
compile_cache.enable()
