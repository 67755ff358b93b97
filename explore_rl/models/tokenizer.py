"""Tokenizers: a character-level one for the procedural tasks, and a wrapper over
the `tokenizers` library for real checkpoints. Both expose the same small API."""
from __future__ import annotations

import string
from typing import Sequence

import numpy as np

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


class CharTokenizer:
  """Printable ASCII + newline, one id per character; ids 0/1/2 are PAD/BOS/EOS."""

  def __init__(self, alphabet: str = string.printable[:-5] + "\n"):
    self.specials = [PAD, BOS, EOS]
    self.alphabet = alphabet
    self._ids = {c: i + len(self.specials) for i, c in enumerate(alphabet)}
    self.pad_id, self.bos_id, self.eos_id = 0, 1, 2

  @property
  def vocab_size(self) -> int:
    return len(self.specials) + len(self.alphabet)

  def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
    try:
      ids = [self._ids[c] for c in text]
    except KeyError as e:
      raise ValueError(f"character {e.args[0]!r} is not in the tokenizer's alphabet "
                       f"(printable ASCII and newline): {text[:60]!r}") from None
    return [self.bos_id] * bos + ids + [self.eos_id] * eos

  def decode(self, ids: Sequence[int]) -> str:
    """Text up to (not including) the first EOS; PAD and BOS are dropped."""
    out = []
    for i in np.asarray(ids).tolist():
      if i == self.eos_id:
        break
      if i >= len(self.specials):
        out.append(self.alphabet[i - len(self.specials)])
    return "".join(out)


class HFTokenizer:
  """A `tokenizers.Tokenizer` (a checkpoint's tokenizer.json, or one built in memory from a
  GGUF file's metadata) with the same API."""

  def __init__(self, tokenizer, *, bos_token: str | None = None, eos_token: str | None = None,
               pad_token: str | None = None):
    from tokenizers import Tokenizer
    self._tok = Tokenizer.from_file(tokenizer) if isinstance(tokenizer, str) else tokenizer
    self._tok.no_padding()
    self._tok.no_truncation()
    tid = self._tok.token_to_id
    self.bos_id = tid(bos_token) if bos_token else None
    self.eos_id = tid(eos_token) if eos_token else None
    self.pad_id = tid(pad_token) if pad_token else self.eos_id

  @property
  def vocab_size(self) -> int:
    return self._tok.get_vocab_size()

  def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
    ids = self._tok.encode(text, add_special_tokens=False).ids
    return [self.bos_id] * bos + ids + [self.eos_id] * eos

  def decode(self, ids: Sequence[int]) -> str:
    ids = np.asarray(ids).tolist()
    if self.eos_id is not None and self.eos_id in ids:
      ids = ids[:ids.index(self.eos_id)]
    return self._tok.decode(ids, skip_special_tokens=True)


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int, length: int | None = None):
  """Left-pad token lists to one length: (tokens int32 [B, P], valid bool [B, P]).

  Left padding makes every prompt end at the same slot, so batched decoding
  writes all rows' new tokens at one cache index.
  """
  length = length or max(len(s) for s in seqs)
  if any(len(s) > length for s in seqs):
    raise ValueError(f"a sequence is longer than {length} tokens")
  tokens = np.full((len(seqs), length), pad_id, np.int32)
  valid = np.zeros((len(seqs), length), bool)
  for i, s in enumerate(seqs):
    if len(s):
      tokens[i, length - len(s):] = s
      valid[i, length - len(s):] = True
  return tokens, valid


def encode_prompts(tokenizer, prompts: Sequence[str], length: int):
  """Prompts with BOS, left-padded to `length`: (int32 [B, P], bool valid [B, P]).

  Left padding puts every prompt's last token at slot P-1, the layout the sampler
  and the learner share (`explore_rl.sampling.generate`).
  """
  ids = [tokenizer.encode(p, bos=True) for p in prompts]
  too_long = [p for p, i in zip(prompts, ids) if len(i) > length]
  if too_long:
    raise ValueError(f"{len(too_long)} prompt(s) exceed max_prompt_len={length}, "
                     f"e.g. {too_long[0]!r}; raise max_prompt_len or lower the difficulty")
  return pad_left(ids, tokenizer.pad_id, length)
