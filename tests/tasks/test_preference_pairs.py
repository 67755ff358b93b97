"""Offline preference pairs: JSONL round trip, every malformed line reported with file and
line, the TFDS form read back (without TensorFlow) equal to the JSONL."""
import sys

import pytest

from explore_rl.tasks.jsonl import JsonlFormatError
from explore_rl.tasks.preference_pairs import PreferencePair, load_pairs, write_pairs

PAIRS = [PreferencePair("sum 7 parts 2,3:", "2+2+3", "3+3"),
         PreferencePair("sum 4 parts 2:", "2+2", ""),               # "": ended at once
         PreferencePair("sum 7 parts 2,3:", "2+2+3", "2+2+2")]


def test_jsonl_round_trip_keeps_order_and_ignores_extra_keys(tmp_path):
  path = tmp_path / "pairs.jsonl"
  write_pairs(path, PAIRS, extra=[{"source": i} for i in range(len(PAIRS))])
  assert '"source": 0' in path.read_text().splitlines()[0]
  assert load_pairs(path) == PAIRS


def test_malformed_lines_are_all_reported_with_file_and_line(tmp_path):
  path = tmp_path / "bad.jsonl"
  path.write_text("\n".join([
      '{"prompt": "p", "chosen": "a", "rejected": "b"}',     # 1 fine
      '{"prompt": "p", "chosen": "a"',                       # 2 bad JSON
      '["p", "a", "b"]',                                     # 3 not an object
      '{"chosen": "a", "rejected": "b"}',                    # 4 no prompt
      '{"prompt": "p", "chosen": "a", "rejected": 3}',       # 5 rejected not a string
      '{"prompt": "p", "chosen": "a", "rejected": "a"}',     # 6 the same response
      '',                                                    # 7 blank
      '{"prompt": "p", "chosen": NaN, "rejected": "b"}',     # 8 NaN
      '{"prompt": "", "chosen": "a", "rejected": "b"}',      # 9 empty prompt
  ]) + "\n")
  with pytest.raises(JsonlFormatError) as info:
    load_pairs(path)
  errors = info.value.errors
  assert [e.split(": ")[0] for e in errors] == [f"{path}:{n}" for n in range(2, 10)]
  for error, words in zip(errors, ["invalid JSON", "JSON object", "'prompt'", "'rejected'",
                                   "the same response", "blank", "not a number", "'prompt'"]):
    assert words in error, error


def test_missing_and_empty_files_say_what_to_do(tmp_path):
  with pytest.raises(FileNotFoundError, match="make preference-data"):
    load_pairs(tmp_path / "none.jsonl")
  (tmp_path / "empty.jsonl").write_text("")
  with pytest.raises(JsonlFormatError, match="no pairs"):
    load_pairs(tmp_path / "empty.jsonl")


def test_tfds_form_reads_back_as_the_jsonl(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  from explore_rl.tasks.tfds_builders import PairsConfig, PreferencePairsBuilder
  path = tmp_path / "pairs.jsonl"
  write_pairs(path, PAIRS)
  builder = PreferencePairsBuilder(data_dir=str(tmp_path / "tfds"), file_format="array_record",
                                   config=PairsConfig(name="toy", path=str(path)))
  builder.download_and_prepare()
  assert builder.name == "explore_rl_preference_pairs"
  assert load_pairs(builder.data_dir) == PAIRS
  assert "tensorflow" not in sys.modules


def test_tfds_build_reports_a_malformed_jsonl(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  from explore_rl.tasks.tfds_builders import PairsConfig, PreferencePairsBuilder
  path = tmp_path / "bad.jsonl"
  path.write_text('{"prompt": "p", "chosen": "a"}\n')
  builder = PreferencePairsBuilder(data_dir=str(tmp_path / "tfds"), file_format="array_record",
                                   config=PairsConfig(name="bad", path=str(path)))
  with pytest.raises(JsonlFormatError, match=f"{path}:1: no 'rejected'"):
    builder.download_and_prepare()
