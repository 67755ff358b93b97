"""TFDS builders: build tiny ArrayRecord splits, read back without TensorFlow, use grain."""
import dataclasses
import sys

import numpy as np

import pytest

tfds = pytest.importorskip("tensorflow_datasets")
grain = pytest.importorskip("grain")

from explore_rl.tasks import get_task, sample_problems  # noqa: E402
from explore_rl.tasks.tfds_builders import (  # noqa: E402
    BUILDERS, PROCEDURAL, TaskConfig, record_to_problem)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("tfds")


def _read(source):
  # Records come back in key-hash order: `index` restores the stream order.
  return [p for _, p in sorted((int(r["index"]), record_to_problem(r))
                               for r in grain.MapDataset.source(source))]


def _float32(problems):
  return [dataclasses.replace(p, difficulty=float(np.float32(p.difficulty))) for p in problems]


@pytest.mark.parametrize("family", PROCEDURAL)
def test_build_and_read_back(family, data_dir):
  config = TaskConfig(name="tiny", num_train=6, num_test=3, difficulty=0.3, seed=2)
  builder = BUILDERS[family](data_dir=str(data_dir), config=config, file_format="array_record")
  builder.download_and_prepare()
  train, test = builder.as_data_source("train"), builder.as_data_source("test")
  # Splits are sample_problems streams of seeds 2 * 2 + 0 (train) and 2 * 2 + 1 (test).
  assert _read(train) == _float32(sample_problems(family, seed=4, num=6, difficulty=0.3))
  assert _read(test) == _float32(sample_problems(family, seed=5, num=3, difficulty=0.3))
  task = get_task(family)
  assert all(task.score(p, p.solution).status == "ok" for p in _read(train))
  # The registered name reads back through tfds.data_source as well.
  again = tfds.data_source(f"{builder.name}/tiny", data_dir=str(data_dir), split="train")
  assert _read(again) == _read(train)
  assert "tensorflow" not in sys.modules


def test_builder_names():
  assert [BUILDERS[f].name for f in PROCEDURAL] == [
      "explore_rl_arithmetic", "explore_rl_countdown", "explore_rl_grid_paths",
      "explore_rl_partition"]
