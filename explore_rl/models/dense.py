"""Dense matmuls in a 16-bit input dtype, with a backward pass XLA:CPU runs at full speed.

`ModelConfig.matmul_dtype` (or a 16-bit compute `dtype`) rounds the inputs of every
projection and of the lm head to bf16/fp16 and accumulates in fp32: mixed precision, the
same arithmetic a TPU applies to fp32 matmuls at default precision. On a CPU with AMX
(this project's 2-core Xeon) a bf16 matmul runs at 500-800 GFLOP/s against ~200-270 in
fp32, but only when both operands are laid out row-major for it, `[N, K] @ [K, M]`.

XLA:CPU writes the backward of `x @ w` as two dots with a transposed operand,
`dy @ wᵀ` and `xᵀ @ dy`, and runs bf16 dots of that form at 125-160 GFLOP/s, below
fp32 (a `[4096, 512]ᵀ @ [4096, 2048]` dot: 54 ms; the same dot with `xᵀ` materialised,
11-14 ms). A plain `transpose` or an optimisation barrier is folded back into the dot by
the algebraic simplifier and layout assignment, so on CPU this module's backward copies
`xᵀ` and `wᵀ` through a reshape, which nothing folds, and both dots become row-major.
One forward + backward of `small` on [64, 96] tokens: fp32 987-1043 ms, bf16 inputs through
`nnx.Linear` 1041 ms, this module 612-791 ms; the RL update 1.42-1.56x faster than in fp32
(benchmarks/README.md, fourth pass).

On GPU and TPU the backward uses plain transposes: their matmul units read either layout.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

MATMUL_DTYPES = {"bfloat16": jnp.bfloat16, "float16": jnp.float16}


def _materialised_t(a: jax.Array) -> jax.Array:
  """aᵀ for a 2-D `a`, as a row-major copy: the reshape between the two halves keeps
  XLA from folding the transpose into the consuming dot's dimension numbers.

  The columns split into blocks of g = gcd(columns, 8), not the rows: an activation's rows
  are the batch, sharded over the data axes, and a split into [rows / 8, 8] lost that
  sharding whenever the rows per device were not a multiple of 8, so XLA all-gathered
  every projection's activations in the backward pass (benchmarks/README.md, sixth pass).
  The copy takes 0.8-1.9x the row split's time on the update's shapes, and the update's
  time did not move at the layouts that had no gather."""
  n, d = a.shape
  g = math.gcd(d, 8)
  return a.reshape(n, d // g, g).transpose(1, 2, 0).reshape(d, n)


def _transposed(a: jax.Array) -> jax.Array:
  return _materialised_t(a) if jax.default_backend() == "cpu" else a.T


@jax.custom_vjp
def transposed_weight(w: jax.Array) -> jax.Array:
  """wᵀ (2-D), for a weight passed to `matmul` as a transpose (a tied output head,
  `transformer.Transformer.head_weight`); its gradient is transposed back row-major on CPU.

  With a plain `.T` XLA folds the transpose of the weight's gradient into the backward
  dot, making a dot with both operands transposed, which XLA:CPU runs only in its generic
  dot (`DotThunk`), and that cannot multiply bf16 into fp32 ("Unsupported element type
  for DotThunk::Execute: BF16 x BF16 = F32"). The forward is the plain `.T`: sampling
  compiles as before."""
  return w.T


def _transposed_weight_fwd(w):
  return w.T, None


def _transposed_weight_bwd(_, dw_t):
  return (_transposed(dw_t),)


transposed_weight.defvjp(_transposed_weight_fwd, _transposed_weight_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul_2d(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x [N, K] @ w [K, M], both rounded to `dtype` -> fp32 [N, M]."""
  return jnp.dot(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


def _fwd(x, w, dtype):
  xl, wl = x.astype(dtype), w.astype(dtype)
  # zero-size arrays carry x's and w's dtypes to the backward pass
  return (jnp.dot(xl, wl, preferred_element_type=jnp.float32),
          (xl, wl, jnp.zeros((0,), x.dtype), jnp.zeros((0,), w.dtype)))


def _bwd(dtype, res, dy):
  xl, wl, x_dtype, w_dtype = res
  dy = dy.astype(dtype)                                                       # [N, M]
  dx = jnp.dot(dy, _transposed(wl), preferred_element_type=jnp.float32)       # [N, K]
  dw = jnp.dot(_transposed(xl), dy, preferred_element_type=jnp.float32)       # [K, M]
  # accumulated in fp32 and returned in the operands' own dtypes: an fp32 activation's
  # gradient is not rounded to 16 bits on its way back
  return dx.astype(x_dtype.dtype), dw.astype(w_dtype.dtype)


_matmul_2d.defvjp(_fwd, _bwd)


def matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
  """x [..., K] @ w [K, M] with both rounded to the 16-bit `dtype`, accumulated in fp32.

  Returns fp32 [..., M]; the gradients of x and w come back in their own dtypes, the
  cotangent rounded to `dtype` for the two backward matmuls."""
  lead, k = x.shape[:-1], x.shape[-1]
  return _matmul_2d(x.reshape(-1, k), w, dtype).reshape(*lead, w.shape[-1])


@functools.cache
def dot_general(dtype_name: str):
  """An `nnx.Linear(dot_general=...)` that multiplies in `dtype_name` (a key of
  MATMUL_DTYPES) and returns the layer's compute dtype. One function object per dtype,
  so the model's graphdef (a static jit argument) hashes the same from run to run."""
  dtype = MATMUL_DTYPES[dtype_name]

  def linear_dot_general(lhs, rhs, dimension_numbers, precision=None,
                         preferred_element_type=None, out_sharding=None):
    del precision, out_sharding   # the 16-bit dtype is the precision; no sharded outputs
    (lc, rc), (lb, rb) = dimension_numbers
    if tuple(lc) != (lhs.ndim - 1,) or tuple(rc) != (0,) or lb or rb or rhs.ndim != 2:
      raise ValueError(f"dense.dot_general multiplies [..., K] @ [K, M]; got "
                       f"{lhs.shape} @ {rhs.shape}, dimension numbers {dimension_numbers}")
    return matmul(lhs, rhs, dtype).astype(preferred_element_type or lhs.dtype)

  linear_dot_general.__name__ = f"dot_general_{dtype_name}"
  return linear_dot_general
