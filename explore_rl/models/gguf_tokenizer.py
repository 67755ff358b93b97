"""The tokenizer a GGUF file describes in its metadata, built with the `tokenizers` library.

A GGUF has no `tokenizer.json`: llama.cpp stores the vocabulary (`tokenizer.ggml.tokens`),
the BPE merges (`.merges`, space-separated pairs), each token's type (`.token_type`;
3 = control), the special-token ids and the jinja chat template as metadata. Only
byte-level BPE (`tokenizer.ggml.model = gpt2`, as Llama 3, Qwen2 and SmolLM use) is
built here, the way transformers builds it from the same file, so both give the same
ids:

- tokens are spelled in GPT-2's byte alphabet; a token using other characters is
  re-spelled byte by byte;
- the pre-tokenizer splits with the regex of the file's `tokenizer.ggml.pre`
  (`_SPLITS`; GPT-2's own for any other, e.g. SmolLM's `smollm`);
- control tokens (type 3) are registered as special tokens, so `<|im_start|>` stays
  one token instead of being cut into pieces; user-defined ones (type 4) as added tokens.

End of generation: the end-of-turn token (`tokenizer.ggml.eot_token_id`) when the file
names one, else its EOS.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

from explore_rl.models.chat_tokenizer import ChatTokenizer

TOKENIZER_MODELS = ("gpt2",)
_CONTROL, _USER_DEFINED = 3, 4

_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {"llama3": _LLAMA3_SPLIT, "llama-v3": _LLAMA3_SPLIT, "llama-bpe": _LLAMA3_SPLIT,
           "qwen2": _QWEN2_SPLIT, "deepseek-r1-qwen": _QWEN2_SPLIT}


@functools.cache
def byte_alphabet() -> dict[int, str]:
  """GPT-2's byte -> printable character map (printable bytes stand for themselves)."""
  keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
  chars, extra = {}, 0
  for b in range(256):
    if b in keep:
      chars[b] = chr(b)
    else:
      chars[b] = chr(256 + extra)
      extra += 1
  return chars


def build_tokenizer(get: Callable[[str], Any], source: str, *,
                    chat_prompts: bool | None = False) -> ChatTokenizer:
  """The tokenizer from metadata: `get(key)` returns a metadata value or None.

  Raises ValueError for a file without tokenizer metadata or with a tokenizer model
  other than byte-level BPE.
  """
  from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
  kind, tokens = get("tokenizer.ggml.model"), get("tokenizer.ggml.tokens")
  if kind is None or tokens is None:
    raise ValueError(f"{source} has no tokenizer metadata (tokenizer.ggml.model, "
                     "tokenizer.ggml.tokens)")
  if kind not in TOKENIZER_MODELS:
    raise ValueError(f"{source}: tokenizer model {kind!r} is not supported; supported: "
                     f"{', '.join(TOKENIZER_MODELS)} (byte-level BPE)")
  merges = get("tokenizer.ggml.merges")
  if merges is None:
    raise ValueError(f"{source} has no tokenizer.ggml.merges (byte-level BPE needs them)")
  spelling = byte_alphabet()
  alphabet = set(spelling.values())
  spelled = [t if set(t) <= alphabet else "".join(spelling[b] for b in t.encode("utf-8"))
             for t in tokens]
  tok = Tokenizer(models.BPE({t: i for i, t in enumerate(spelled)},
                             [tuple(m.split(" ")) for m in merges], dropout=None,
                             continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
  split = _SPLITS.get(get("tokenizer.ggml.pre"))
  tok.pre_tokenizer = (pre_tokenizers.ByteLevel(add_prefix_space=False) if split is None else
                       pre_tokenizers.Sequence([
                           pre_tokenizers.Split(Regex(split), behavior="isolated"),
                           pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]))
  tok.decoder = decoders.ByteLevel()
  types = get("tokenizer.ggml.token_type") or [1] * len(tokens)
  # A control token outside the byte alphabet is a llama.cpp mislabel: registering it
  # would add a token past the embedding (transformers skips it too).
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                          for t, kind in zip(tokens, types)
                          if kind == _CONTROL and set(t) <= alphabet])
  vocab = set(spelled)
  tok.add_tokens([AddedToken(t, special=False, normalized=False)
                  for t, kind in zip(tokens, types) if kind == _USER_DEFINED and t in vocab])

  def token(key):
    index = get(f"tokenizer.ggml.{key}")
    if index is not None and not 0 <= index < len(tokens):
      raise ValueError(f"{source}: tokenizer.ggml.{key}={index} is outside the "
                       f"{len(tokens)}-token vocabulary")
    return None if index is None else spelled[index]

  specials = {"bos": token("bos_token_id"), "eos": token("eot_token_id") or token("eos_token_id"),
              "pad": token("padding_token_id"), "unk": token("unknown_token_id")}
  return ChatTokenizer(tok, specials, get("tokenizer.chat_template"), source=source,
                       chat_prompts=chat_prompts)
