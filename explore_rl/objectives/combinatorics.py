"""Leaf helpers shared by objectives and evaluation: subsets, binomials, pass@k.

Set RL (`set_rl.py`), pass@k-aware advantages (`advantages/passk_aware.py`) and the
evaluation metrics (`explore_rl.eval.passk`) all need k-subsets of N samples and
the unbiased pass@k estimator; they live here so that neither package imports the
other (docs/design.md, "Layers"). The public names stay where users look for
them: `explore_rl.objectives.set_rl.all_subsets` and `explore_rl.eval.passk.pass_at_k`
re-export these.
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "all_subsets",
    "array_namespace",
    "check_k",
    "float_dtype",
    "gather_subsets",
    "order_statistic_weights",
    "pass_at_k",
    "sample_subsets",
]


def array_namespace(*arrays):
  """jax.numpy when any input is a JAX array or tracer, else NumPy."""
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def float_dtype(xp):
  return np.float64 if xp is np else jnp.zeros(()).dtype


def check_k(k: int) -> None:
  if not isinstance(k, (int, np.integer)) or k < 0:
    raise ValueError(f"k must be a non-negative Python int (static), got {k!r}")


def pass_at_k(n, c, k: int):
  """Unbiased pass@k for n samples with c correct; n and c broadcast, k a Python int.

  Sum of k log-terms, −expm1(Σ_j log1p(−c/(n−j))), so tiny and near-1 values keep
  their relative precision; exactly 1 when n − c < k (every k-subset holds a correct
  sample), exactly 0 when c = 0 ≤ n − k.
  """
  check_k(k)
  xp = array_namespace(n, c)
  dtype = float_dtype(xp)
  n = xp.asarray(n, dtype)[..., None]  # [..., 1]
  c = xp.asarray(c, dtype)[..., None]
  j = xp.arange(k, dtype=dtype)  # [k]
  valid = j < n - c  # the factor (n−c−j)/(n−j) is positive
  ratio = xp.where(valid, c, 0.0) / xp.where(valid, n - j, 1.0)  # [..., k]
  log_fail = xp.sum(xp.log1p(-ratio), axis=-1)  # log C(n−c,k)/C(n,k) where defined
  return xp.where(n[..., 0] - c[..., 0] < k, 1.0, -xp.expm1(log_fail))


@functools.lru_cache(maxsize=256)
def _order_statistic_weights(n: int, k: int) -> tuple[float, ...]:
  total = math.comb(n, k)
  # int / int is correctly rounded in Python, however large the binomials.
  return tuple(math.comb(i - 1, k - 1) / total for i in range(1, n + 1))


def order_statistic_weights(n: int, k: int) -> np.ndarray:
  """w_i = C(i−1, k−1)/C(n, k), i = 1..n: float64[n], the chance that the i-th smallest
  of n values is the maximum of a uniform k-subset (Σ_i w_i = 1 for 1 ≤ k ≤ n)."""
  check_k(k)
  if not 1 <= k <= n:
    raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
  return np.array(_order_statistic_weights(n, k))


def _check_sizes(num_samples: int, set_size: int) -> None:
  if not 1 <= set_size <= num_samples:
    raise ValueError(f"need 1 <= set_size <= num_samples, got {set_size} and {num_samples}")


@functools.lru_cache(maxsize=64)
def _all_subsets(num_samples: int, set_size: int) -> np.ndarray:
  subsets = np.array(list(itertools.combinations(range(num_samples), set_size)), np.int32)
  subsets.setflags(write=False)  # cached: callers must not mutate the shared copy
  return subsets


def all_subsets(num_samples: int, set_size: int) -> np.ndarray:
  """All C(N, n) subsets of range(N) of size n, lexicographic: read-only int32[K, n]."""
  _check_sizes(num_samples, set_size)
  return _all_subsets(num_samples, set_size)


def sample_subsets(rng: jax.Array, num_samples: int, set_size: int,
                   num_subsets: int) -> jax.Array:
  """K distinct size-n subsets of range(N), uniform without replacement: int32[K, n].

  Rejection sampling in a `lax.while_loop`: draw a uniform subset, keep it if no
  earlier row equals it. Accepting the first K distinct draws of i.i.d. uniform
  subsets gives a uniform random K-set of subsets, without ever enumerating the
  C(N, n) candidates (which may not fit in int32, let alone memory). The expected
  number of draws is Σ_{j<K} C/(C−j): cheap for K ≪ C; when K is close to
  C = C(N, n), use `all_subsets`. Rows are sorted, rows are in draw order.
  Jittable and vmappable over `rng` (N, n, K static).
  """
  _check_sizes(num_samples, set_size)
  total = math.comb(num_samples, set_size)
  if not 1 <= num_subsets <= total:
    raise ValueError(f"num_subsets must be in [1, C({num_samples}, {set_size}) = {total}], "
                     f"got {num_subsets}")
  rows = jnp.arange(num_subsets)

  def draw(state):
    key, subsets, count = state
    key, sub = jax.random.split(key)
    # The n largest of N i.i.d. uniforms sit at a uniform random n-subset (and top_k
    # compiles far faster than random.choice without replacement).
    _, subset = jax.lax.top_k(jax.random.uniform(sub, (num_samples,)), set_size)
    subset = jnp.sort(subset).astype(jnp.int32)  # [n]
    seen = jnp.any(jnp.all(subsets == subset, axis=-1) & (rows < count))
    subsets = jnp.where(seen, subsets, subsets.at[count].set(subset))
    return key, subsets, count + jnp.where(seen, 0, 1)

  init = (rng, jnp.zeros((num_subsets, set_size), jnp.int32), jnp.int32(0))
  _, subsets, _ = jax.lax.while_loop(lambda s: s[2] < num_subsets, draw, init)
  return subsets


def gather_subsets(x: jax.Array, subsets: jax.Array) -> jax.Array:
  """x[..., N] -> x of every subset's members, [..., K, n]."""
  subsets = jnp.asarray(subsets)
  if subsets.ndim == 2:  # shared by all prompts
    return jnp.take(x, subsets, axis=-1)
  return jnp.take_along_axis(x[..., None, :], subsets, axis=-1)
