"""Shape checks at the public boundaries of objectives/ and sampling/ (chex), with messages
that name the argument at fault. They run at trace time: free inside jit."""
from __future__ import annotations

import chex
import jax


def assert_like(reference_name: str, reference: jax.Array, **arrays) -> None:
  """Each named array (None: absent) has the shape of `reference`."""
  for name, x in arrays.items():
    if x is not None:
      chex.assert_equal_shape([reference, x], custom_message=(
          f"{name} must have the shape of {reference_name}"))


def assert_rank(name: str, x: jax.Array, rank) -> None:
  """`x` has rank `rank` (an int or a set of ints)."""
  chex.assert_rank(x, rank, custom_message=f"{name} has the wrong rank")


def assert_ints(name: str, x: jax.Array) -> None:
  """`x` holds integers (token ids, cluster ids)."""
  chex.assert_type(x, int, custom_message=f"{name} must hold integers")
