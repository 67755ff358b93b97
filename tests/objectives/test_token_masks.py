"""Forking tokens (arXiv 2506.01939): exactly ρ of the valid tokens, the highest-entropy
ones, never padding; the policy loss is kept only on them; names and fractions are checked
at start-up."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.errors import ConfigError
from explore_rl.objectives.loss_terms import TokenInputs
from explore_rl.objectives.token_masks import TOKEN_MASKS, forking_tokens
from explore_rl.training.objective_builder import Objective

# 10 valid tokens (entropies 0.1 ... 1.0 shuffled); padding holds the largest entropies.
ENTROPY = np.array([[0.3, 0.9, 0.1, 5.0, 7.0],
                    [0.6, 1.0, 0.4, 0.2, 6.0],
                    [0.8, 0.5, 0.7, 9.0, 8.0]], np.float32)
MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)


@pytest.mark.parametrize("fraction, want", [
    (0.2, [1.0, 0.9]), (0.5, [1.0, 0.9, 0.8, 0.7, 0.6]), (1.0, "all"), (0.01, [1.0])])
def test_exactly_the_top_fraction_of_valid_tokens(fraction, want):
  chosen = np.asarray(forking_tokens(ENTROPY, MASK, fraction=fraction))
  assert not chosen[~MASK].any()
  want = np.sort(ENTROPY[MASK]) if want == "all" else np.asarray(want, np.float32)
  assert chosen.sum() == max(int(fraction * MASK.sum()), 1)
  np.testing.assert_allclose(np.sort(ENTROPY[chosen]), np.sort(want))


def test_under_jit_with_ties_and_no_valid_token():
  fn = jax.jit(lambda e, m: forking_tokens(e, m, fraction=0.5))
  ties = np.ones((2, 3), np.float32)
  assert int(fn(ties, np.ones((2, 3), bool)).sum()) == 3
  assert not np.asarray(fn(ties, np.zeros((2, 3), bool))).any()


@pytest.mark.parametrize("fraction", [0.0, -0.2, 1.5])
def test_bad_fraction_fails(fraction):
  with pytest.raises(ValueError, match=r"must be in \(0, 1\]"):
    forking_tokens(ENTROPY, MASK, fraction=fraction)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  logp = jnp.asarray(rng.normal(-1.0, 0.5, MASK.shape), jnp.float32)
  return TokenInputs(logp, logp + 0.1, jnp.asarray([1.0, -0.5, 2.0]), jnp.asarray(MASK),
                     logp, jnp.asarray(ENTROPY), jnp.zeros(MASK.shape, jnp.int32))


def test_policy_loss_kept_only_on_forking_tokens():
  spec = Objective(load_config("grpo", {"objective.token_mask": "forking",
                                        "objective.forking_fraction": 0.2}).objective).loss_spec
  plain = Objective(load_config("grpo").objective).loss_spec
  x = _inputs()
  num, den, metrics = spec(x, rng=jax.random.key(0))
  chosen = np.asarray(metrics["selected"]["policy"]["token_mask"])
  np.testing.assert_array_equal(chosen, forking_tokens(ENTROPY, MASK, fraction=0.2))
  per_token = jax.grad(lambda lp: spec(x._replace(logprobs=lp), rng=jax.random.key(0))[0])(
      x.logprobs)
  full = jax.grad(lambda lp: plain(x._replace(logprobs=lp), rng=jax.random.key(0))[0])(
      x.logprobs)
  np.testing.assert_allclose(per_token, np.where(chosen, full, 0.0), rtol=1e-6)
  assert float(den) == MASK.sum()          # normalised over every valid token
  np.testing.assert_allclose(metrics["token_mask_frac"], 0.2)


@pytest.mark.parametrize("overrides, message", [
    ({"objective.token_mask": "forks"}, "unknown token mask 'forks'; valid names: none, forking"),
    ({"objective.token_mask": "forking", "objective.forking_fraction": 0.0},
     r"objective.forking_fraction must be in \(0, 1\], got 0.0"),
    ({"objective.token_mask": "forking", "objective.forking_fraction": 1.2},
     r"objective.forking_fraction must be in \(0, 1\], got 1.2"),
])
def test_config_errors_are_one_line_at_start_up(overrides, message):
  with pytest.raises(ConfigError, match=message) as e:
    Objective(load_config("grpo", overrides).objective)
  assert "\n" not in str(e.value)
  assert TOKEN_MASKS.names() == ["forking"]
