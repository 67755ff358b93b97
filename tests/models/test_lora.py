"""LoRA adapters and per-block rematerialisation on the tiny preset."""
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax

from explore_rl.models import hf_export, hf_import, lora
from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.training.checkpoint import Checkpointer
from explore_rl.training.state import apply_if_finite, for_params, init_state, make_optimizer

CFG = get_preset("tiny")
TOKENS = jnp.asarray(np.random.default_rng(0).integers(3, 100, (2, 9)), jnp.int32)


def adapted(rank=4, seed=1):
  """(graphdef, params) of the tiny model with adapters whose B is not zero."""
  _, base = tr.init(CFG, seed=seed)
  graphdef, abstract = tr.abstract_init(CFG.replace(lora_rank=rank))
  params = lora.add_adapters(base, abstract)
  key = iter(jax.random.split(jax.random.key(2), 64))
  params = jax.tree_util.tree_map_with_path(
      lambda p, x: 0.1 * jax.random.normal(next(key), x.shape) if jax.tree_util.keystr(p)
      .endswith("['lora_b']") else x, params)
  return graphdef, base, params


def test_fresh_adapters_give_the_base_logits():
  g, base = tr.init(CFG, seed=1)
  lg, abstract = tr.abstract_init(CFG.replace(lora_rank=8, lora_targets=("q_proj", "up_proj")))
  params = lora.add_adapters(base, abstract)
  adapters = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(params)
              if lora.is_adapter(p)]
  assert len(adapters) == 2 * 2 * CFG.num_hidden_layers
  assert all("q_proj" in a or "up_proj" in a for a in adapters)
  np.testing.assert_array_equal(tr.forward(lg, params, TOKENS), tr.forward(g, base, TOKENS))


def test_only_adapters_get_gradients_and_optimizer_state():
  graphdef, _, params = adapted()
  grads = jax.grad(lambda p: tr.forward(graphdef, p, TOKENS).mean())(params)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    assert bool(jnp.any(g != 0)) == lora.is_adapter(path), jax.tree_util.keystr(path)
  opt = make_optimizer(learning_rate=1e-2)
  state = init_state(params, opt, 0)
  shaped = [p for p, x in jax.tree_util.tree_leaves_with_path(state.opt_state) if x.ndim]
  assert shaped and all(lora.is_adapter(p) for p in shaped)
  updates, _ = for_params(opt, params).update(grads, state.opt_state, params)
  for path, u in jax.tree_util.tree_leaves_with_path(updates):
    assert bool(jnp.any(u != 0)) == lora.is_adapter(path)


def test_the_finite_check_reads_the_adapters_gradients_only():
  """The frozen base's gradients are constant zeros: a reduction over them (the finite check)
  is work XLA constant-folds at compile time, minutes at 135M parameters. The check reads
  the adapters alone: a NaN placed in a base gradient does not stop the update, one in an
  adapter's does, and no `is_finite` of the lowered function reads a base weight's shape."""
  graphdef, _, params = adapted()
  opt = make_optimizer(learning_rate=1e-2)
  state = init_state(params, opt, 0)
  grads = jax.grad(lambda p: tr.forward(graphdef, p, TOKENS).mean())(params)
  poison = lambda which: jax.tree_util.tree_map_with_path(  # noqa: E731
      lambda p, g: g.at[0].set(jnp.nan) if which(p) else g, grads)
  _, finite = apply_if_finite(state, poison(lora.is_base), jnp.float32(1.0), opt)
  assert bool(finite)
  _, finite = apply_if_finite(state, poison(lora.is_adapter), jnp.float32(1.0), opt)
  assert not bool(finite)
  text = jax.jit(apply_if_finite, static_argnums=3).lower(state, grads, jnp.float32(1.0),
                                                         opt).as_text()
  # `stablehlo.is_finite %x : (tensor<64x4xf32>) -> tensor<64x4xi1>`: the operand's shape.
  checked = {m.group(1).rstrip("x") or "scalar" for m in
             re.finditer(r"is_finite .*?: \(?tensor<((?:\d+x)*)f32>", text)}
  base_shapes = {"x".join(map(str, x.shape)) for p, x in
                 jax.tree_util.tree_leaves_with_path(params) if lora.is_base(p) and x.ndim}
  adapter_shapes = {"x".join(map(str, x.shape)) for p, x in
                    jax.tree_util.tree_leaves_with_path(params) if lora.is_adapter(p)}
  assert checked and checked <= adapter_shapes | {"scalar"}, checked
  assert not checked & (base_shapes - adapter_shapes)


def test_merged_export_equals_the_adapted_model(tmp_path):
  graphdef, _, params = adapted()
  ours = tr.forward(graphdef, params, TOKENS)
  merged = lora.merged(params, CFG.replace(lora_rank=4))
  np.testing.assert_allclose(tr.forward(tr.abstract_init(CFG)[0], merged, TOKENS), ours,
                             atol=2e-5)
  hf_export.save_hf_checkpoint(str(tmp_path), CFG.replace(lora_rank=4), params)
  np.testing.assert_allclose(hf_import.load_hf_model(str(tmp_path))(TOKENS), ours, atol=2e-5)


def test_a_lora_checkpoint_holds_the_adapters_and_restores(tmp_path):
  graphdef, base, params = adapted()
  opt = make_optimizer(learning_rate=1e-2)
  state = init_state(params, opt, 0)
  ckpt = Checkpointer(str(tmp_path))
  ckpt.save(3, state, {"step": 3})
  fresh = init_state(lora.add_adapters(base, tr.abstract_init(CFG.replace(lora_rank=4))[1]),
                     opt, 0)
  restored, meta = ckpt.restore(fresh)
  ckpt.close()
  assert meta == {"step": 3}
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    np.testing.assert_array_equal(a, b)
  saved = json.loads((tmp_path / "3" / "state" / "_METADATA").read_text())["tree_metadata"]
  kinds = {k: v["value_metadata"]["value_type"] for k, v in saved.items() if "'params'" in k}
  assert {t for k, t in kinds.items() if "lora_" in k} == {"jax.Array"}
  assert {t for k, t in kinds.items() if "lora_" not in k} == {"None"}   # no base weights


def test_remat_gives_the_same_loss_and_gradients():
  g, params = tr.init(CFG, seed=4)
  g_remat, _ = tr.abstract_init(CFG.replace(remat=True))
  loss = lambda graphdef: jax.value_and_grad(
      lambda p: optax.softmax_cross_entropy_with_integer_labels(
          tr.forward(graphdef, p, TOKENS)[:, :-1], TOKENS[:, 1:]).mean())(params)
  (l0, g0), (l1, g1) = loss(g), loss(g_remat)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
