"""Token choices (Clip-Cov's and KL-Cov's tokens, the forking-token mask) are made over the
whole mini-batch (training/update.py), so the update does not depend on how the mini-batch
is cut into micro-batches: on an 8-device data mesh, micro_batches=1 and 4 give the same
loss, metrics and parameter change up to float tolerance."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from explore_rl.config_files import load_config
from explore_rl.models import sharding
from explore_rl.models import transformer as tr
from explore_rl.models.config import get_preset
from explore_rl.training.objective_builder import Objective
from explore_rl.training.state import init_state
from explore_rl.training.update import RLBatch, rl_update

P, M, R = 5, 8, 32   # 32 rows: 4 micro-batches x 8 devices


@pytest.fixture(scope="module")
def batch():
  """R rows with ragged responses (every row holds at least one valid token)."""
  rng = np.random.default_rng(1)
  r_len = rng.integers(2, M + 1, R)
  prompt = rng.integers(3, 100, (R, P))
  response = np.where(np.arange(M) < r_len[:, None], rng.integers(3, 100, (R, M)), 0)
  return RLBatch(jnp.asarray(prompt, jnp.int32), jnp.ones((R, P), bool),
                 jnp.asarray(response, jnp.int32), jnp.asarray(np.arange(M) < r_len[:, None]),
                 jnp.asarray(rng.normal(-4.5, 0.5, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(-4.5, 0.5, (R, M)), jnp.float32),
                 jnp.asarray(rng.normal(0, 1, R), jnp.float32))


# Ratios at which a per-micro-batch choice picks other tokens than one over the mini-batch
# (max(⌊r·N⌋, 1) per micro-batch, other covariance means, other random keys).
OBJECTIVES = {
    "clip_cov": ("clip_cov", {"objective.loss_kwargs.ratio": 0.1,
                              "objective.loss_kwargs.cov_lb": -10.0}),
    "kl_cov": ("kl_cov", {"objective.loss_kwargs.ratio": 0.1}),
    "forking": ("grpo", {"objective.token_mask": "forking", "objective.forking_fraction": 0.2}),
}


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_micro_batches_give_the_update_of_the_whole_mini_batch(name, batch):
  config, overrides = OBJECTIVES[name]
  spec = Objective(load_config(f"{config}:tiny", overrides).objective).loss_spec
  mesh = sharding.make_mesh({"data": -1, "fsdp": 1})
  graphdef, params = tr.init(get_preset("tiny"), seed=3)
  params = jax.device_put(params, sharding.replicated(mesh))
  placed = jax.tree.map(lambda x: jax.device_put(x, sharding.batch_sharding(mesh, x.ndim)),
                        batch)
  opt = optax.sgd(1.0)   # the parameter change is minus the gradient
  out = {}
  for micro in (1, 4):
    state = init_state(jax.tree.map(jnp.copy, params), opt, 0)
    new, metrics = rl_update(graphdef, opt, spec, state, params, placed, jax.random.key(7),
                             micro_batches=micro, temperature=1.0)
    out[micro] = (jax.device_get(new.params), jax.device_get(metrics))
  (p1, m1), (p4, m4) = out[1], out[4]
  assert float(m1["grad_norm"]) > 0
  frac = "token_mask_frac" if name == "forking" else "selected_frac"
  assert 0 < float(m1[frac]) < 1
  for key in ("loss", "grad_norm"):
    np.testing.assert_allclose(m4[key], m1[key], rtol=2e-5, atol=1e-7, err_msg=key)
  for a, b in zip(jax.tree.leaves(p4), jax.tree.leaves(p1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


def _slice(tree, rows):
  return jax.tree.map(lambda x: x[rows] if jnp.ndim(x) else x, tree)


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_the_whole_batch_choice_handed_to_its_halves(name):
  """`LossSpec.select` over the whole batch, handed to each half as `selected`: the halves
  act on the whole batch's tokens (their numerators sum to the whole batch's); each half
  choosing for itself acts on other tokens."""
  from explore_rl.objectives.loss_terms import TokenInputs
  config, overrides = OBJECTIVES[name]
  spec = Objective(load_config(config, overrides).objective).loss_spec
  rng = np.random.default_rng(0)
  mask = jnp.asarray(np.arange(6) < rng.integers(2, 7, 8)[:, None])
  logp = jnp.asarray(rng.normal(-2, 0.7, (8, 6)), jnp.float32)
  x = TokenInputs(logp, logp + jnp.asarray(rng.normal(0, 0.2, (8, 6)), jnp.float32),
                  jnp.asarray(rng.normal(0, 1, 8), jnp.float32), mask, logp,
                  jnp.asarray(rng.uniform(0, 2, (8, 6)), jnp.float32), jnp.zeros((8, 6), int))
  key = jax.random.key(3)
  selected = spec.select(x, rng=key)
  num, _, metrics = spec(x, rng=key)
  jax.tree.map(np.testing.assert_array_equal, metrics["selected"], selected)
  halves = [slice(0, 4), slice(4, 8)]
  given = sum(spec(_slice(x, h), rng=key, selected=_slice(selected, h))[0] for h in halves)
  np.testing.assert_allclose(given, num, rtol=1e-6)
  own = [spec(_slice(x, h), rng=key)[2]["selected"] for h in halves]
  assert any(not np.array_equal(np.concatenate([o[k1][k2] for o in own]), selected[k1][k2])
             for k1 in selected for k2 in selected[k1])
