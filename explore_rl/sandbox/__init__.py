"""Sandboxed scoring: third-party scorers run in confined, forked children (see `pool`).

`SandboxPool(preload=[...]).map("module:function", [kwargs, ...])` -> `list[Result]`;
`shared_pool(...)` is the process-wide pool for given settings.
"""
from explore_rl.sandbox.pool import (STATUSES, Result, SandboxPool, SandboxUnavailable,
                                     probe_namespaces, shared_pool)

__all__ = ["STATUSES", "Result", "SandboxPool", "SandboxUnavailable", "probe_namespaces",
           "shared_pool"]
