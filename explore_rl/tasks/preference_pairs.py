"""Offline preference data: (prompt, chosen, rejected) pairs, as JSONL or a TFDS dataset.

JSONL, one pair a line:

  {"prompt": "...", "chosen": "...", "rejected": "..."}

`prompt` is the text the policy is conditioned on (the problem's prompt as the sampler
encodes it), `chosen` and `rejected` are two responses to it, the first preferred (each
may be "", a response that ends at once; the trainer appends the end-of-sequence token).
Other keys are kept out of the pair (a writer may add provenance). A directory is read as
the prepared TFDS form (`tfds_builders.PreferencePairsBuilder`, ArrayRecord, no
TensorFlow): the version directory `DATA_DIR/explore_rl_preference_pairs/<config>/<version>`.

The reader never skips silently: every malformed line (the checks of
`jsonl.json_line_object`: invalid UTF-8, bad JSON, NaN, blank ...; then not an object, a
missing or empty `prompt`, a missing `chosen` / `rejected` string, chosen equal to rejected) is
reported as `path:line: reason` in one `JsonlFormatError`. training/preference_data.py
writes these files from an SFT prior's verified samples (docs/algorithms.md, "Preference
optimisation").
"""
from __future__ import annotations

import dataclasses
import json
import os

from explore_rl.tasks.jsonl import JsonlFormatError, json_line_object

FIELDS = ("prompt", "chosen", "rejected")


@dataclasses.dataclass(frozen=True)
class PreferencePair:
  prompt: str
  chosen: str     # the preferred response
  rejected: str


def pair_from_object(obj) -> tuple[PreferencePair | None, str | None]:
  """(pair, None) or (None, the reason `obj` is not a pair)."""
  if not isinstance(obj, dict):
    return None, f"expected a JSON object, got {type(obj).__name__}"
  if not isinstance(obj.get("prompt"), str) or not obj["prompt"]:
    return None, "no 'prompt' string (a pair needs a non-empty prompt)"
  for field in ("chosen", "rejected"):
    if not isinstance(obj.get(field), str):
      return None, f"no '{field}' string (a response; \"\" is one that ends at once)"
  if obj["chosen"] == obj["rejected"]:
    return None, "'chosen' and 'rejected' are the same response"
  return PreferencePair(obj["prompt"], obj["chosen"], obj["rejected"]), None


def load_pairs(path: str | os.PathLike) -> list[PreferencePair]:
  """The pairs of a JSONL file, or of a prepared TFDS version directory, in file order.

  Raises JsonlFormatError listing every malformed line; FileNotFoundError names a
  missing path and how to make it.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"no preference data at {path!r}: make it with `make "
                            "preference-data` (python -m explore_rl.training.preference_data)")
  if os.path.isdir(path):
    return _load_tfds(path)
  pairs, errors = [], []
  with open(path, "rb") as f:
    for lineno, raw in enumerate(f, start=1):
      obj, reason = json_line_object(raw)
      pair = None
      if reason is None:
        pair, reason = pair_from_object(obj)
      if reason:
        errors.append(f"{path}:{lineno}: {reason}")
      else:
        pairs.append(pair)
  if errors:
    raise JsonlFormatError(errors)
  if not pairs:
    raise JsonlFormatError([f"{path}: no pairs"])
  return pairs


def write_pairs(path: str | os.PathLike, pairs, extra=None) -> None:
  """`pairs` as JSONL at `path` (directories made); `extra[i]`, a dict, is added to line i."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    for i, pair in enumerate(pairs):
      line = {**dataclasses.asdict(pair), **(extra[i] if extra else {})}
      f.write(json.dumps(line, sort_keys=True) + "\n")


def _load_tfds(path: str) -> list[PreferencePair]:
  import tensorflow_datasets as tfds
  records = tfds.builder_from_directory(path).as_data_source("train")
  text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)
  # ArrayRecord holds records in key-hash order: `index` is the position in the JSONL.
  rows = sorted((int(r["index"]), PreferencePair(*(text(r[k]) for k in FIELDS)))
                for r in records)
  return [pair for _, pair in rows]
