"""TFDS dataset builders for the procedural families, readable without TensorFlow.

Each family in `PROCEDURAL` gets a `GeneratorBasedBuilder` (`BUILDERS[name]`)
with train / test splits drawn by `sample_problems` from fixed, distinct seeds,
sizes and difficulty set by a `TaskConfig`. Build with ArrayRecord and read back
through `builder.as_data_source(split)` (or `tfds.data_source`), then iterate
with grain; TensorFlow is never imported:

  builder = BUILDERS["partition"](data_dir=d, config=TaskConfig(name="small", num_train=64),
                                  file_format="array_record")
  builder.download_and_prepare()
  source = builder.as_data_source("train")                # random access, records as dicts
  for problem in grain.MapDataset.source(source).map(record_to_problem): ...

ArrayRecord files hold records in key-hash order, not generation order: the
`index` feature gives each record's position in its split's stream.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import tensorflow_datasets as tfds

from explore_rl.tasks.base import Problem
from explore_rl.tasks.registry import get_task, sample_problems

PROCEDURAL = ("arithmetic", "countdown", "grid_paths", "partition")
SPLIT_SEEDS = {"train": 0, "test": 1}  # offset by TaskConfig.seed


@dataclasses.dataclass(eq=False)
class TaskConfig(tfds.core.BuilderConfig):
  """Split sizes, difficulty (None: the family's default) and base seed."""
  num_train: int = 1000
  num_test: int = 100
  difficulty: float | None = None
  seed: int = 0


def record_to_problem(record) -> Problem:
  """A decoded record (str or bytes text features) back to a Problem.

  The difficulty comes back rounded to float32: TFDS serialises floats as float32.
  """
  text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)
  return Problem(prompt=text(record["prompt"]), answer=text(record["answer"]),
                 solution=text(record["solution"]), difficulty=float(record["difficulty"]),
                 meta=json.loads(text(record["meta"])),
                 family=text(record["family"]) if "family" in record else "")


class _TaskBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """The builder of family `family`; subclasses (one per family) are registered."""

  family: str
  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": "Records carry their family (Problem.family)."}
  BUILDER_CONFIGS = [TaskConfig(name="default")]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"explore_rl procedural task family {self.family!r}.",
        features=tfds.features.FeaturesDict({
            "index": np.int64, "prompt": tfds.features.Text(),
            "answer": tfds.features.Text(), "solution": tfds.features.Text(),
            "difficulty": np.float32, "meta": tfds.features.Text(),
            "family": tfds.features.Text(),
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # procedural: nothing to download
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {split: self._generate_examples(split, num) for split, num in sizes.items()}

  def _generate_examples(self, split: str, num: int):
    config = self.builder_config
    seed = config.seed * len(SPLIT_SEEDS) + SPLIT_SEEDS[split]
    for i, p in enumerate(sample_problems(get_task(self.family), seed, num, config.difficulty)):
      yield i, {"index": i, "prompt": p.prompt, "answer": p.answer, "solution": p.solution,
                "difficulty": p.difficulty, "meta": json.dumps(dict(p.meta)),
                "family": p.family}


# TFDS registers each under its class name in snake_case: "explore_rl_partition", ...
BUILDERS = {family: type(f"ExploreRl{family.title().replace('_', '')}", (_TaskBuilder,),
                         {"family": family, "__module__": __name__})
            for family in PROCEDURAL}


@dataclasses.dataclass(eq=False)
class PairsConfig(tfds.core.BuilderConfig):
  """The JSONL file of preference pairs (`tasks/preference_pairs.py`) a build reads."""
  path: str = ""


class PreferencePairsBuilder(tfds.core.GeneratorBasedBuilder):
  """Offline preference pairs as a TFDS dataset ("explore_rl_preference_pairs"): one
  "train" split of {index, prompt, chosen, rejected}, built from a JSONL file validated
  by `preference_pairs.load_pairs`; `load_pairs(version directory)` reads it back.

    builder = PreferencePairsBuilder(data_dir=d, config=PairsConfig(name="partition",
                                     path="pairs.jsonl"), file_format="array_record")
    builder.download_and_prepare()          # -> builder.data_dir
  """

  name = "explore_rl_preference_pairs"
  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [PairsConfig(name="default")]

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self, description="explore_rl offline preference pairs.",
        features=tfds.features.FeaturesDict({
            "index": np.int64, "prompt": tfds.features.Text(),
            "chosen": tfds.features.Text(), "rejected": tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    del dl_manager  # the JSONL file is local
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    from explore_rl.tasks.preference_pairs import load_pairs
    for i, pair in enumerate(load_pairs(self.builder_config.path)):
      yield i, {"index": i, "prompt": pair.prompt, "chosen": pair.chosen,
                "rejected": pair.rejected}
