"""Curricula: determinism, adaptive band control, mixture weights, state round trip."""
import json

import numpy as np
import pytest

from explore_rl.tasks import get_task
from explore_rl.tasks.curriculum import CURRICULA, make_curriculum

CONFIGS = {
    "uniform": {"task": "arithmetic", "difficulty": 0.5},
    "adaptive": {"task": "partition", "step": 0.1, "window": 8},
    "mixture": {"tasks": {"arithmetic": 1.0, "partition": 2.0}, "inner": "adaptive",
                "inner_kwargs": {"step": 0.1, "window": 4}},
}


def test_registry_names():
  assert CURRICULA.names() == sorted(CONFIGS)
  with pytest.raises(ValueError, match="valid names: adaptive, mixture, uniform"):
    make_curriculum("zipf", seed=0)


def _rates(batch, step):
  # Deterministic pseudo feedback in [0, 1] with all three regimes (0, inside, 1).
  return [(len(p.prompt) * 7 + step * 3) % 11 / 10 for p in batch]


def _run(curriculum, steps, start=0):
  out = []
  for step in range(start, start + steps):
    batch = curriculum.next_batch(5)
    curriculum.update(batch, _rates(batch, step))
    out.append([p.prompt for p in batch])
  return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_deterministic_and_resumable(name):
  a, b = (make_curriculum(name, seed=7, **CONFIGS[name]) for _ in range(2))
  assert _run(a, 6) == _run(b, 6)
  state = json.loads(json.dumps(a.state_dict()))  # JSON-serialisable
  resumed = make_curriculum(name, seed=7, **CONFIGS[name])
  resumed.load_state_dict(state)
  assert resumed.stats() == a.stats()
  assert _run(resumed, 6, start=6) == _run(a, 6, start=6)
  assert a.stats()["generated"] == 60 and a.stats()["evaluated"] == 60
  other = make_curriculum(name, seed=8, **CONFIGS[name])
  assert _run(other, 2) != _run(make_curriculum(name, seed=7, **CONFIGS[name]), 2)
  with pytest.raises(ValueError, match="seed"):
    other.load_state_dict(state)


def test_uniform_is_prefix_stable():
  a = make_curriculum("uniform", task="countdown", seed=1)
  b = make_curriculum("uniform", task=get_task("countdown"), seed=1)
  assert a.next_batch(3) + a.next_batch(2) == b.next_batch(5)
  assert a.update(b.next_batch(2), [0.0, 1.0]).tolist() == [True, True]
  with pytest.raises(ValueError, match="one pass rate"):
    a.update(a.next_batch(2), [0.5])


def test_adaptive_moves_difficulty_and_drops_outside_band():
  c = make_curriculum("adaptive", task="partition", seed=0, difficulty=0.5, band=(0.1, 0.9),
                      step=0.25, window=4)
  batch = c.next_batch(4)
  # Mean 0.975 > 0.9: harder. Only 0.9 is inside [0.1, 0.9].
  assert c.update(batch, [1.0, 1.0, 1.0, 0.9]).tolist() == [False, False, False, True]
  assert c.difficulty == 0.75 and c.recent == [] and c.num_dropped == 3
  assert all(p.difficulty == 0.75 for p in c.next_batch(3))
  c.update(batch, [0.5, 0.5, 0.5, 0.5])  # inside the band: stay
  assert c.difficulty == 0.75
  c.update(batch, [0.0, 0.0, 0.0, 0.0])  # window [.5 .5 .5 .5 0 0 0 0][-4:] = 0 < 0.1: easier
  assert c.difficulty == 0.5
  for _ in range(5):
    c.update(batch, [0.0] * 4)
  assert c.difficulty == 0.0  # clipped at the easy end
  stats = c.stats()
  assert (stats["generated"], stats["evaluated"], stats["dropped"]) == (7, 32, 27)


def test_adaptive_tracks_a_simulated_solver():
  """A learner solving problems of difficulty d with probability 1 - d: the band
  [0.4, 0.6] holds it near d = 0.5 from either side."""
  for start in (0.0, 1.0):
    c = make_curriculum("adaptive", task="arithmetic", seed=0, difficulty=start,
                        band=(0.4, 0.6), step=0.05, window=16)
    for _ in range(60):
      batch = c.next_batch(8)
      c.update(batch, [1.0 - p.difficulty for p in batch])
    assert abs(c.difficulty - 0.5) <= 0.1, (start, c.difficulty)


def test_mixture_weights_and_routing():
  c = make_curriculum("mixture", tasks={"arithmetic": 1.0, "countdown": 3.0}, seed=0)
  batch = c.next_batch(400)
  from_countdown = np.mean([p.prompt.startswith("make") for p in batch])
  assert abs(from_countdown - 0.75) < 0.06  # binomial sd sqrt(.75*.25/400) ~ 0.022
  c.update(batch[:10], [0.5] * 10)
  stats = c.stats()
  n_cd = sum(p.prompt.startswith("make") for p in batch[:10])
  assert stats["countdown/evaluated"] == n_cd and stats["arithmetic/evaluated"] == 10 - n_cd
  assert stats["generated"] == 400 == stats["countdown/generated"] + stats["arithmetic/generated"]
  stranger = make_curriculum("uniform", task="partition", seed=0).next_batch(1)
  with pytest.raises(ValueError, match="did not serve"):
    c.update(stranger, [0.5])
  with pytest.raises(ValueError, match="weights"):
    make_curriculum("mixture", tasks={"arithmetic": 0.0}, seed=0)


def test_learnability_weighting_favours_intermediate_pass_rates():
  # Feedback: arithmetic always solved, countdown never, partition half the time; grid_paths
  # has weight 0 (a held-out family): never drawn, whatever its score.
  tasks = {"arithmetic": 1.0, "countdown": 1.0, "partition": 1.0, "grid_paths": 0.0}
  rate = {"arithmetic": 1.0, "countdown": 0.0, "partition": 0.5, "grid_paths": 0.5}
  c = make_curriculum("mixture", tasks=tasks, seed=3, weighting="learnability", explore=0.1)
  fixed = make_curriculum("mixture", tasks=tasks, seed=3)
  assert np.allclose(c.probs, fixed.probs)  # no feedback yet: the fixed weights
  for _ in range(20):
    batch = c.next_batch(12)
    c.update(batch, [rate[p.family] for p in batch])
  probs = dict(zip(c.names, c.probs))
  assert probs["partition"] > 0.7 and probs["grid_paths"] == 0.0
  assert probs["arithmetic"] < 0.15 and probs["countdown"] < 0.15
  batch = c.next_batch(300)
  assert abs(np.mean([p.family == "partition" for p in batch]) - probs["partition"]) < 0.08
  assert not any(p.family == "grid_paths" for p in batch)
  stats = c.stats()
  assert stats["partition/prob"] == pytest.approx(probs["partition"])
  assert stats["arithmetic/pass_ema"] > 0.9 and stats["countdown/pass_ema"] < 0.1
  resumed = make_curriculum("mixture", tasks=tasks, seed=3, weighting="learnability")
  resumed.load_state_dict(json.loads(json.dumps(c.state_dict())))
  assert np.allclose(resumed.probs, c.probs)
  assert [p.prompt for p in resumed.next_batch(8)] == [p.prompt for p in c.next_batch(8)]
  with pytest.raises(ValueError, match="weighting"):
    make_curriculum("mixture", tasks=tasks, seed=3, weighting="zipf")


def test_mixture_draw_is_fixed_by_its_seed_and_tags_families():
  tasks = {"arithmetic": 1.0, "countdown": 1.0}
  a = make_curriculum("mixture", tasks=tasks, seed=0, inner_kwargs={"difficulty": 0.2})
  b = make_curriculum("mixture", tasks=tasks, seed=0, inner_kwargs={"difficulty": 0.2})
  b.next_batch(5)  # the curriculum's position does not change what draw(seed) gives
  drawn = a.draw(11, 40)
  assert drawn == b.draw(11, 40) and drawn[:10] == a.draw(11, 10) and drawn != a.draw(12, 40)
  assert {p.family for p in drawn} == {"arithmetic", "countdown"}
  assert all(p.difficulty == pytest.approx(0.2) for p in drawn)
