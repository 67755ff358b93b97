"""Set RL: subsets of a prompt's samples, set objectives, marginal set advantages.

Poly-EPO (arXiv 2604.17654) optimises J_f = E_x E_{y_1..n ~ π} f(x, y_1..n) for a
symmetric set function f. From N > n samples of a prompt it builds K subsets G_j of
size n (all C(N, n) of them, or K drawn uniformly without replacement), scores each,
and gives response i the marginal set advantage

    A_j = f(G_j) − mean_j' f(G_j'),        Â_i = Σ_{j: i ∈ G_j} A_j        (sum form)

or the mean of A_j over the subsets holding i (mean form, the default: Poly-EPO's
average; over all subsets the sum is C(N−1, n−1) times larger, 35× at N = 8, n = 4).
With all subsets the sum form is an unbiased estimate of M·∇J_f, M = C(N, n) −
C(N−1, n−1): the C(N, n) part is the score-function term of every subset, the
C(N−1, n−1) part is what the subset-mean baseline (which depends on y_i) takes back. With K < C = C(N, n)
subsets drawn uniformly without replacement, the scale becomes
M_K = (K−1)(C − C(N−1, n−1))/(C − 1) (still positive, M at K = C). Â replaces the
per-sample advantage in the PPO/GRPO loss.

Set functions take the rewards and cluster ids of every subset at once,
`[..., K, n]`, and return `[..., K]`; register a new one in `SET_FUNCTIONS`:

    @SET_FUNCTIONS.register("my_fn")
    def my_fn(subset_rewards, subset_cluster_ids):  # [..., K, n] each
      return ...                                   # [..., K]

Subsets are int32 index arrays `[K, n]` shared by every prompt, or `[..., K, n]`
with the rewards' leading dims (one draw per prompt).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from explore_rl.objectives.combinatorics import all_subsets, gather_subsets, sample_subsets
from explore_rl.objectives.shapes import assert_like
from explore_rl.registry import Registry

__all__ = [
    "all_subsets",
    "gather_subsets",
    "marginal_set_advantages",
    "max_reward",
    "mean_reward",
    "pass_at_n",
    "polychromatic",
    "polychromatic_scores",
    "sample_subsets",
    "set_rl_advantages",
    "set_scores",
]

SET_FUNCTIONS = Registry("set function")

REDUCTIONS = ("sum", "mean")


def _float(x: jax.Array) -> jax.Array:
  """At least fp32 (bf16 rewards are promoted, fp64 stays fp64)."""
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def marginal_set_advantages(set_scores: jax.Array, subsets: jax.Array, num_samples: int, *,
                            reduce: str = "mean") -> jax.Array:
  """Marginal set advantages [..., N] from f(G_j) = set_scores[..., K].

  A_j = f(G_j) − mean_j f(G_j); response i gets Σ_{j: i ∈ G_j} A_j ("sum") or that
  sum divided by the number of subsets holding i ("mean", the default). A response in no subset
  gets 0. `subsets`: int[K, n] or int[..., K, n]. Poly-EPO, arXiv 2604.17654.
  """
  if reduce not in REDUCTIONS:
    raise ValueError(f"unknown reduce {reduce!r}; valid: {', '.join(REDUCTIONS)}")
  scores = _float(set_scores)  # [..., K]
  set_adv = scores - jnp.mean(scores, axis=-1, keepdims=True)  # [..., K]
  member = jax.nn.one_hot(jnp.asarray(subsets), num_samples, dtype=scores.dtype)
  member = jnp.sum(member, axis=-2)  # [..., K, N]: 1 where response i is in G_j
  adv = jnp.sum(set_adv[..., :, None] * member, axis=-2)  # [..., N]
  if reduce == "mean":
    adv = adv / jnp.maximum(jnp.sum(member, axis=-2), 1.0)
  return adv


# --- set functions: (subset rewards[..., K, n], subset cluster ids[..., K, n]) -> [..., K]


@SET_FUNCTIONS.register("mean")
def mean_reward(subset_rewards: jax.Array, subset_cluster_ids: jax.Array | None = None
                ) -> jax.Array:
  """f(G) = mean_{i∈G} r_i (plain expected reward: the GRPO objective)."""
  del subset_cluster_ids  # f ignores strategies
  return jnp.mean(_float(subset_rewards), axis=-1)


@SET_FUNCTIONS.register("pass")
def pass_at_n(subset_rewards: jax.Array, subset_cluster_ids: jax.Array | None = None
              ) -> jax.Array:
  """f(G) = max_{i∈G} 1[r_i > 0]: the set passes when any member succeeds (pass@n)."""
  del subset_cluster_ids
  passed = jnp.any(_float(subset_rewards) > 0, axis=-1)
  return passed.astype(_float(subset_rewards).dtype)


@SET_FUNCTIONS.register("max")
def max_reward(subset_rewards: jax.Array, subset_cluster_ids: jax.Array | None = None
               ) -> jax.Array:
  """f(G) = max_{i∈G} r_i (max@n, continuous rewards)."""
  del subset_cluster_ids
  return jnp.max(_float(subset_rewards), axis=-1)


@SET_FUNCTIONS.register("polychromatic")
def polychromatic(subset_rewards: jax.Array, subset_cluster_ids: jax.Array | None, *,
                  degenerate_id: int = -1) -> jax.Array:
  """f(G) = mean_{i∈G} r_i · |distinct non-degenerate clusters in G| / n.

  Degenerate responses (cluster id `degenerate_id`) still count in the mean reward
  but never as a strategy, so a set of only degenerate responses scores 0.
  """
  if subset_cluster_ids is None:
    raise ValueError("the polychromatic set function needs cluster ids")
  ids = jnp.asarray(subset_cluster_ids)  # [..., K, n]
  set_size = ids.shape[-1]
  # Member m is a new strategy when no earlier member of its set shares its id.
  same = ids[..., :, None] == ids[..., None, :]  # [..., K, n, n]
  earlier = jnp.tril(jnp.ones((set_size, set_size), bool), k=-1)  # [m, m'] = m' < m
  first = ~jnp.any(same & earlier, axis=-1)  # [..., K, n]
  distinct = jnp.sum(first & (ids != degenerate_id), axis=-1)  # [..., K]
  return mean_reward(subset_rewards) * distinct / set_size


def set_scores(set_fn: str | Callable, rewards: jax.Array, cluster_ids: jax.Array | None,
               subsets: jax.Array, **set_fn_kwargs) -> jax.Array:
  """f(G_j) for every subset: [..., K] from rewards[..., N] and cluster_ids[..., N]."""
  fn = SET_FUNCTIONS.get(set_fn) if isinstance(set_fn, str) else set_fn
  subset_ids = None if cluster_ids is None else gather_subsets(cluster_ids, subsets)
  return fn(gather_subsets(rewards, subsets), subset_ids, **set_fn_kwargs)


def polychromatic_scores(rewards: jax.Array, cluster_ids: jax.Array, subsets: jax.Array, *,
                         degenerate_id: int = -1) -> jax.Array:
  """Polychromatic f(G_j) for every subset, [..., K] (see `polychromatic`)."""
  return set_scores(polychromatic, rewards, cluster_ids, subsets, degenerate_id=degenerate_id)


def set_rl_advantages(rewards: jax.Array, *, cluster_ids: jax.Array | None = None,
                      set_fn: str = "polychromatic", set_size: int, reduce: str = "mean",
                      num_subsets: int | None = None, rng: jax.Array | None = None
                      ) -> jax.Array:
  """Marginal set advantages [..., N] of `set_fn` over subsets of size `set_size`.

  num_subsets=None: all C(N, n) subsets (exact, the Poly-EPO default N=8, n=4, K=70).
  Otherwise each prompt (leading index of `rewards`) gets its own K subsets drawn
  with `sample_subsets` from `rng`. Poly-EPO, arXiv 2604.17654.
  """
  assert_like("rewards", rewards, cluster_ids=cluster_ids)
  num_samples = rewards.shape[-1]
  if num_subsets is None:
    subsets = all_subsets(num_samples, set_size)  # [K, n]
  else:
    if rng is None:
      raise ValueError("sampling subsets (num_subsets set) needs an rng key")
    batch = rewards.shape[:-1]
    keys = jax.random.split(rng, math.prod(batch))
    draw = jax.vmap(lambda key: sample_subsets(key, num_samples, set_size, num_subsets))
    subsets = draw(keys).reshape(*batch, num_subsets, set_size)  # [..., K, n]
  scores = set_scores(set_fn, rewards, cluster_ids, subsets)  # [..., K]
  return marginal_set_advantages(scores, subsets, num_samples, reduce=reduce)
