"""Tokenizers: round trips, specials, left padding, and the `tokenizers` wrapper."""
import numpy as np
import pytest

from explore_rl.models.tokenizer import CharTokenizer, HFTokenizer, pad_left


def test_char_tokenizer_round_trip_and_specials():
  tok = CharTokenizer()
  text = "sum 12 parts 2,3,5:\n2+5+5"
  ids = tok.encode(text, bos=True, eos=True)
  assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == len(text) + 2
  assert tok.decode(ids) == text
  assert tok.decode(tok.encode("ab") + [tok.eos_id] + tok.encode("cd")) == "ab"
  assert tok.vocab_size == 3 + 95 + 1 <= 128
  with pytest.raises(ValueError, match="alphabet"):
    tok.encode("é")


def test_pad_left():
  tokens, valid = pad_left([[5, 6, 7], [8]], pad_id=0)
  assert tokens.tolist() == [[5, 6, 7], [0, 0, 8]]
  assert valid.tolist() == [[True] * 3, [False, False, True]]
  with pytest.raises(ValueError):
    pad_left([[1, 2, 3]], 0, length=2)


def test_hf_tokenizer_wrapper(tmp_path):
  from tokenizers import Tokenizer, models, pre_tokenizers
  vocab = {"<s>": 0, "</s>": 1, "<pad>": 2, "hello": 3, "world": 4, "[UNK]": 5}
  tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
  tk.pre_tokenizer = pre_tokenizers.Whitespace()
  path = tmp_path / "tokenizer.json"
  tk.save(str(path))
  tok = HFTokenizer(str(path), bos_token="<s>", eos_token="</s>", pad_token="<pad>")
  assert tok.encode("hello world", bos=True, eos=True) == [0, 3, 4, 1]
  assert tok.decode([3, 4, 1, 3]) == "hello world"
  assert (tok.bos_id, tok.eos_id, tok.pad_id, tok.vocab_size) == (0, 1, 2, 6)
  assert np.asarray(tok.encode("world hello")).tolist() == [4, 3]
