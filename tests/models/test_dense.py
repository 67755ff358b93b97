"""models/dense.py: 16-bit matmuls whose CPU backward XLA runs row-major.

Golden values are float64 NumPy products of the bf16-rounded operands; the layout check
reads the compiled HLO, and checks it against the plain dot's, which does have a
transposed operand (so the check can fail)."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from explore_rl.errors import ConfigError
from explore_rl.models import dense, transformer
from explore_rl.models.config import get_preset

BF16 = jnp.bfloat16


def _rounded(a):
  return np.asarray(jnp.asarray(a).astype(BF16).astype(jnp.float32), np.float64)


def _operands(n=24, k=16, m=40):
  kx, kw, kd = jax.random.split(jax.random.key(0), 3)
  return (jax.random.normal(kx, (n, k)), jax.random.normal(kw, (k, m)),
          jax.random.normal(kd, (n, m)))


def test_matmul_and_its_gradients_equal_the_float64_products_of_rounded_operands():
  x, w, dy = _operands()
  y, vjp = jax.vjp(lambda x, w: dense.matmul(x, w, BF16), x, w)
  dx, dw = vjp(dy)
  assert y.dtype == dx.dtype == dw.dtype == jnp.float32
  xr, wr, dyr = _rounded(x), _rounded(w), _rounded(dy)
  np.testing.assert_allclose(np.asarray(y), xr @ wr, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(dx), dyr @ wr.T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(dw), xr.T @ dyr, rtol=1e-5, atol=1e-5)
  # jit == eager, and leading axes are flattened and restored
  x3 = x.reshape(4, 6, 16)
  jitted = jax.jit(jax.grad(lambda x, w: (dense.matmul(x, w, BF16) ** 2).sum(), (0, 1)))
  eager = jax.grad(lambda x, w: (dense.matmul(x, w, BF16) ** 2).sum(), (0, 1))
  for a, b in zip(jitted(x3, w), eager(x3, w)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
  # an odd column count (no 8-column blocks for the transposing reshape) gives the same
  # numbers
  _, vjp_odd = jax.vjp(lambda x, w: dense.matmul(x, w, BF16), x[:, :15], w[:15])
  dx_odd, dw_odd = vjp_odd(dy)
  np.testing.assert_allclose(np.asarray(dx_odd), dyr @ wr[:15].T, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(dw_odd), xr[:, :15].T @ dyr, rtol=1e-5, atol=1e-5)


def _contractions(fn, *args) -> set[tuple[str, str]]:
  hlo = jax.jit(fn).lower(*args).compile().as_text()
  return set(re.findall(r"\bdot\(.*?lhs_contracting_dims=\{(\d+)\}, rhs_contracting_dims=\{(\d+)\}",
                        hlo))


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU backward's layout")
def test_cpu_backward_dots_are_row_major():
  x, w, dy = _operands(64, 32, 48)
  loss = lambda f: (lambda x, w: (f(x, w) * dy).sum())
  ours = _contractions(jax.grad(loss(lambda x, w: dense.matmul(x, w, BF16)), (0, 1)), x, w)
  plain = _contractions(jax.grad(loss(lambda x, w: jnp.dot(
      x.astype(BF16), w.astype(BF16), preferred_element_type=jnp.float32)), (0, 1)), x, w)
  assert ours == {("1", "0")}, ours           # [N, K] @ [K, M] only
  assert plain - {("1", "0")}, plain          # XLA keeps a transposed operand for the plain dot


# Tied: the head is the embedding's transpose, whose gradient XLA:CPU could not run in bf16
# ("Unsupported element type for DotThunk::Execute") before `dense.transposed` kept it
# row-major.
@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_model_in_bf16_matmuls_tracks_fp32_and_keeps_fp32_activations(tied):
  config = get_preset("tiny", tie_word_embeddings=tied)
  graphdef, params = transformer.init(config)
  low_graphdef, _ = transformer.init(config.replace(matmul_dtype="bfloat16"))
  tokens = jax.random.randint(jax.random.key(1), (3, 10), 0, config.vocab_size)

  def loss(g, p):
    return jax.nn.log_softmax(transformer.forward(g, p, tokens)).mean()
  grad = jax.jit(jax.value_and_grad(loss, 1), static_argnums=0)
  ref, ref_grad = grad(graphdef, params)
  low, low_grad = grad(low_graphdef, params)
  assert low != ref and abs(low - ref) < 1e-3 * abs(ref)      # rounded, and close
  ref_flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(ref_grad)])
  low_flat = jnp.concatenate([g.ravel() for g in jax.tree.leaves(low_grad)])
  cosine = ref_flat @ low_flat / jnp.linalg.norm(ref_flat) / jnp.linalg.norm(low_flat)
  assert cosine > 0.999 and all(g.dtype == jnp.float32 for g in jax.tree.leaves(low_grad))
  # the fp32 default keeps XLA's own dot: nothing changes for models that do not ask
  assert config.low_precision_matmul is None
  assert config.replace(dtype="bfloat16").low_precision_matmul == "bfloat16"


def test_bad_matmul_dtype_and_unknown_fields_are_config_errors():
  with pytest.raises(ConfigError, match=r"matmul_dtype='int8'; valid"):
    get_preset("tiny", matmul_dtype="int8")
  with pytest.raises(ConfigError, match=r"unknown model field\(s\) \['hiden_size'\]"):
    get_preset("tiny", hiden_size=8)


def test_sharded_bf16_matmul_gradients_equal_unsharded():
  """The materialised transposes under a data × fsdp × tensor mesh of the 8 test devices:
  the same loss and gradients as one device, up to bf16 rounding. The sharded dots sum
  their partial products in another order, so an activation can round to the neighbouring
  bf16 value (2⁻⁸ apart); a wrong transpose would give gradients of O(1) relative error."""
  from explore_rl.models import sharding
  config = get_preset("tiny", matmul_dtype="bfloat16")
  graphdef, params = transformer.init(config)
  tokens = jax.random.randint(jax.random.key(2), (8, 12), 0, config.vocab_size)

  def loss(p, t):
    return jax.nn.log_softmax(transformer.forward(graphdef, p, t)).mean()
  grad = jax.jit(jax.value_and_grad(loss))
  want, want_grad = grad(params, tokens)
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  got, got_grad = grad(sharding.shard_params(params, mesh),
                       jax.device_put(tokens, sharding.batch_sharding(mesh, 2)))
  np.testing.assert_allclose(float(got), float(want), rtol=1e-5)
  for a, b in zip(jax.tree.leaves(got_grad), jax.tree.leaves(want_grad)):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.linalg.norm(a - b) <= 1e-2 * np.linalg.norm(b)


def test_data_sharded_backward_keeps_rows_on_their_devices():
  """Rows sharded over the 8 test devices stay there in the backward pass: no all-gather of
  activations. 96 rows are 12 per device; a transposing reshape that split the rows as
  [96 / 8, 8] lost the sharding (12 is not a multiple of 8), and XLA gathered every
  projection's activations onto every device. The gradients still equal one device's."""
  from explore_rl.models import sharding
  mesh = sharding.make_mesh({"data": 8, "fsdp": 1, "tensor": 1})
  x, w, dy = _operands(96, 32, 48)

  def loss(x, w, dy):
    return (dense.matmul(x, w, BF16) * dy).sum()
  grad = jax.jit(jax.grad(loss, (0, 1)))
  rows = sharding.batch_sharding(mesh, 2)
  args = (jax.device_put(x, rows), jax.device_put(w, NamedSharding(mesh, P())),
          jax.device_put(dy, rows))
  hlo = grad.lower(*args).compile().as_text()
  assert "all-gather" not in hlo
  for got, want in zip(grad(*args), grad(x, w, dy)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
