"""The RL trainer: resume == uninterrupted, NaN steps skipped then a clear stop,
unknown names fail at start-up, 8 devices == 1 device."""
import jax
import numpy as np
import pytest

from explore_rl.config_files import load_config
from explore_rl.metrics_log import read_metrics
from explore_rl.training.dynamic_sampling import sample_groups
from explore_rl.training.epochs import rl_epochs
from explore_rl.training.group_context import group_context
from explore_rl.training.rl import RLTrainer, train_rl

# Timing and throughput differ run to run; everything else must match exactly.
TIMING = ("time_", "step_time", "tokens_per_s")


def _config(**overrides):
  # An entropy bonus makes every step change the parameters even when the
  # untrained tiny model earns no reward, so resuming is a real test.
  base = {"objective.entropy_coef": 0.05, "total_steps": 4, "eval_every": 2,
          "checkpoint_every": 2, "optim.learning_rate": 1e-2}
  return load_config("grpo:tiny", {**base, **overrides})


def _strip(rows):
  return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def test_resumed_run_writes_the_same_metrics(tmp_path):
  train_rl(_config(), str(tmp_path / "straight"), progress=False)
  train_rl(_config(total_steps=2), str(tmp_path / "resumed"), progress=False)   # "interrupted"
  train_rl(_config(), str(tmp_path / "resumed"), progress=False)                # same command
  straight = _strip(read_metrics(str(tmp_path / "straight")))
  resumed = _strip(read_metrics(str(tmp_path / "resumed")))
  assert [r["step"] for r in resumed] == [1, 2, 3, 4]
  assert straight[-1]["grad_norm"] > 0
  for a, b in zip(straight, resumed):
    assert a.keys() == b.keys()
    for k in a:
      assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), (a["step"], k)


def test_nan_updates_are_skipped_then_the_run_stops_clearly(tmp_path):
  # A huge learning rate sends the parameters to Inf after the first update;
  # every later loss is NaN: those updates are skipped, counted, and the run
  # stops after max_consecutive_skips with a message saying what to do.
  cfg = _config(**{"optim.learning_rate": 1e38, "optim.grad_clip": 1e38,
                   "max_consecutive_skips": 2, "total_steps": 6, "eval_every": 100,
                   "checkpoint_every": 100})
  with pytest.raises(FloatingPointError, match="consecutive steps had NaN/Inf"):
    train_rl(cfg, str(tmp_path), progress=False)
  rows = read_metrics(str(tmp_path))
  skipped = [r["updates_skipped"] for r in rows]
  # the first update applies the huge step (after it every loss is NaN): from then on
  # every mini-batch is skipped, and two steps with skips in a row stop the run
  assert skipped[-1] == 2 and all(s > 0 for s in skipped[-2:]) and rows[-1]["step"] < 6
  assert rows[-1]["updates_skipped_total"] == sum(skipped)


@pytest.mark.parametrize("key, value, kind", [
    ("objective.advantage", "nope", "advantage"),
    ("objective.loss", "nope", "policy loss"),
    ("objective.aggregation", "nope", "loss aggregation"),
    ("objective.reward_shaper", "nope", "reward shaper"),
    ("task", "nope", "task"),
    ("judge", "nope", "judge"),
    ("curriculum", "nope", "curriculum"),
    ("rollout.sampler", "nope", "sampler"),
])
def test_unknown_names_fail_at_start_up_with_the_valid_ones(tmp_path, key, value, kind):
  with pytest.raises(ValueError, match=f"unknown {kind} 'nope'; valid"):
    RLTrainer(_config(**{key: value}), str(tmp_path), progress=False)


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (virtual) devices")
def test_two_steps_on_eight_devices_equal_one_device(tmp_path):
  """FSDP over 8 devices vs 1 device: same samples, same parameters to 1e-5.

  Tolerance: the sharded matmuls sum in a different order (fp32 rounding ~1e-7
  per op); two Adam steps at lr 1e-2 keep the differences below 1e-5.
  """
  params = {}
  for n in (1, 8):
    trainer = RLTrainer(_config(total_steps=2, **{"mesh.num_devices": n}),
                        str(tmp_path / str(n)), progress=False)
    trainer.run()
    params[n] = jax.device_get(trainer.state.params)
  rows = {n: read_metrics(str(tmp_path / str(n))) for n in (1, 8)}
  assert [r["reward_mean"] for r in rows[1]] == [r["reward_mean"] for r in rows[8]]
  for a, b in zip(jax.tree.leaves(params[1]), jax.tree.leaves(params[8])):
    # Adam's first steps move each weight by ~lr·sign(g): a gradient near 0 whose
    # summation order differs across shardings can move a few weights by up to ~lr·1e-3.
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_the_update_compiles_once_for_a_shape_on_one_device(tmp_path):
  """The first step's train state is laid out as the update returns it (every leaf a
  NamedSharding on the mesh), so the second update of a mini-batch shape reuses the first
  one's executable: with the step counter and PRNG key as single-device arrays it compiled
  again (the jit cache keys on the input shardings)."""
  from jax.sharding import NamedSharding
  from explore_rl import compile_time
  compile_time.start()
  trainer = RLTrainer(_config(**{"mesh.num_devices": 1, "learner.mini_batches": 1}),
                      str(tmp_path), progress=False)
  assert all(isinstance(x.sharding, NamedSharding) for x in jax.tree.leaves(trainer.state))
  keys = jax.random.split(jax.random.key(0), 3)
  scored, _ = sample_groups(trainer, keys[0])
  context, _ = group_context(trainer, scored, trainer.parts.objective.needs, keys[1])
  _, adv = map(np.asarray, trainer.parts.objective(context))
  rl_epochs(trainer, scored, adv, 1, keys[2])
  compiled = compile_time.seconds()["xla"]
  rl_epochs(trainer, scored, adv, 2, keys[2])       # the same rows: the same layout and shapes
  assert compile_time.seconds()["xla"] == compiled


def test_select_groups_prefers_kept_then_informative():
  from explore_rl.training.dynamic_sampling import select_groups_to_train
  rewards = np.array([[1, 1], [0, 1], [0, 0], [1, 0]], np.float32)
  keep = np.array([True, True, False, False])
  # dynamic: informative (groups 1, 3) first, kept before dropped within each
  assert select_groups_to_train(rewards, keep, 3, True).tolist() == [1, 3, 0]
  assert select_groups_to_train(rewards, keep, 2, False).tolist() == [0, 1]
  assert select_groups_to_train(rewards, np.ones(4, bool), 4, False).tolist() == [0, 1, 2, 3]
