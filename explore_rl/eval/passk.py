"""Unbiased pass@k, max@k and maj@k from n samples per prompt, and curves over k.

pass@k (Chen et al. 2021, arXiv 2107.03374), from n samples of which c are correct:

    pass@k = 1 − C(n−c, k)/C(n, k) = 1 − Π_{j=0}^{k−1} (1 − c/(n−j)),   1 when n − c < k.

max@k (continuous rewards; PKPO, arXiv 2505.15201), rewards sorted ascending g_(1..n):

    max@k = Σ_i w_i g_(i),   w_i = C(i−1, k−1)/C(n, k)   (P[g_(i) is the max of a k-subset]).

maj@k: the expected accuracy of a majority vote over k of the n samples.

Design: one implementation for NumPy and JAX. The array namespace follows the
inputs: NumPy in -> NumPy out in float64 (host-side evaluation, exact to ~1e-15
for any n); any jax.Array (or tracer under jit/vmap) in -> jax.Array out in JAX's
default float dtype. k must be a concrete Python int everywhere: it fixes static
shapes (the k terms of the product, the combinatorial weights, which are computed
exactly from Python integers and are constants of the jitted graph).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from explore_rl.objectives.combinatorics import (all_subsets, array_namespace, check_k, float_dtype,
                                                gather_subsets, order_statistic_weights,
                                                pass_at_k, sample_subsets)

__all__ = [
    "Curve",
    "k_values",
    "maj_at_k",
    "maj_at_k_curve",
    "max_at_k",
    "max_at_k_curve",
    "order_statistic_weights",
    "pass_at_k",
    "pass_at_k_curve",
]


def max_at_k(rewards, k: int):
  """Unbiased max@k per row of rewards[..., n]: Σ_i C(i−1,k−1)/C(n,k) · sort(r)_i -> [...]."""
  xp = array_namespace(rewards)
  dtype = float_dtype(xp)
  rewards = xp.asarray(rewards)
  weights = order_statistic_weights(rewards.shape[-1], k).astype(dtype)  # [n]
  return xp.sum(xp.sort(rewards.astype(dtype), axis=-1) * weights, axis=-1)


def maj_at_k(answer_ids, is_correct, k: int, *, num_subsets: int | None = None, rng=None):
  """Expected accuracy of a majority vote over k of the n samples, per row: [...].

  answer_ids[..., n] int (−1 = unparseable: casts no vote), is_correct[..., n] bool
  (samples with the same answer id share it). Each k-subset votes; a tie between
  t top answers earns (#correct among them)/t, the accuracy of a random tie-break;
  a subset without votes earns 0. Averaged over all C(n, k) subsets (exact,
  num_subsets=None, or at least C(n, k)) or over `num_subsets` distinct subsets per row
  drawn with `rng` (unbiased Monte Carlo, JAX arrays out).
  """
  check_k(k)
  xp = array_namespace(answer_ids, is_correct)
  n = np.shape(answer_ids)[-1]
  if num_subsets is None or num_subsets >= math.comb(n, k):
    subsets = all_subsets(n, k)  # [K, k]
  else:
    if rng is None:
      raise ValueError("maj_at_k with num_subsets < C(n, k) needs an rng key")
    xp = jnp
    batch = np.shape(answer_ids)[:-1]
    keys = jax.random.split(rng, math.prod(batch))
    subsets = jax.vmap(lambda key: sample_subsets(key, n, k, num_subsets))(keys)
    subsets = subsets.reshape(*batch, num_subsets, k)  # [..., K, k]
  if xp is np:  # host-side: stay in NumPy (the subsets are all_subsets' static table)
    ids, correct = (np.take(np.asarray(x), subsets, axis=-1) for x in (answer_ids, is_correct))
  else:
    ids, correct = (gather_subsets(jnp.asarray(x), subsets) for x in (answer_ids, is_correct))
  dtype = float_dtype(xp)
  voted = ids >= 0  # [..., K, k]
  votes = xp.sum((ids[..., :, None] == ids[..., None, :]) & voted[..., None, :], axis=-1)
  votes = xp.where(voted, votes, 0).astype(dtype)  # [..., K, k]: votes for member's answer
  top = voted & (votes == xp.max(votes, axis=-1, keepdims=True))
  # An answer with v votes has v members: weighting each member by 1/v counts answers.
  per_answer = xp.where(top, 1.0, 0.0) / xp.maximum(votes, 1.0)
  tied = xp.sum(per_answer, axis=-1)  # [..., K]
  won = xp.sum(per_answer * xp.asarray(correct, dtype), axis=-1)
  return xp.mean(won / xp.maximum(tied, 1.0), axis=-1)


# --- curves over k = 1, 2, 4, ..., n --------------------------------------------------


class Curve(NamedTuple):
  """A metric over k: mean over prompts and its standard error (std, ddof=1, / √P)."""
  ks: tuple[int, ...]
  mean: np.ndarray | jax.Array  # [len(ks)]
  stderr: np.ndarray | jax.Array  # [len(ks)]

  def metrics(self, name: str) -> dict[str, float]:
    """{"pass@1": ..., "pass@1_stderr": ..., ...} for the metrics JSONL (host side)."""
    out = {}
    for k, m, s in zip(self.ks, np.asarray(self.mean), np.asarray(self.stderr)):
      out[f"{name}@{k}"] = float(m)
      out[f"{name}@{k}_stderr"] = float(s)
    return out


def k_values(n: int) -> tuple[int, ...]:
  """1, 2, 4, ... up to n, and n itself when it is not a power of two."""
  ks = tuple(2**i for i in range(n.bit_length()) if 2**i <= n)
  return ks if ks[-1] == n else ks + (n,)


def _curve(per_prompt: list, ks: tuple[int, ...]) -> Curve:
  """per_prompt[j]: values[P] for ks[j] -> Curve over the P prompts."""
  xp = array_namespace(*per_prompt)
  values = xp.stack(per_prompt)  # [len(ks), P]
  num_prompts = values.shape[-1]
  std = xp.std(values, axis=-1, ddof=1) if num_prompts > 1 else xp.zeros(len(ks))
  return Curve(ks, xp.mean(values, axis=-1), std / np.sqrt(num_prompts))


def pass_at_k_curve(num_correct, n: int) -> Curve:
  """pass@k over k_values(n) from num_correct[P] (n samples per prompt)."""
  ks = k_values(n)
  return _curve([pass_at_k(n, num_correct, k) for k in ks], ks)


def max_at_k_curve(rewards) -> Curve:
  """max@k over k_values(n) from rewards[P, n]."""
  ks = k_values(np.shape(rewards)[-1])
  return _curve([max_at_k(rewards, k) for k in ks], ks)


def maj_at_k_curve(answer_ids, is_correct, *, num_subsets: int | None = None, rng=None
                   ) -> Curve:
  """maj@k over k_values(n) from answer_ids[P, n], is_correct[P, n] (see `maj_at_k`).

  """
  ks = k_values(np.shape(answer_ids)[-1])
  keys = [None] * len(ks) if rng is None else list(jax.random.split(rng, len(ks)))
  values = [maj_at_k(answer_ids, is_correct, k, num_subsets=num_subsets, rng=key)
            for k, key in zip(ks, keys)]
  return _curve(values, ks)
