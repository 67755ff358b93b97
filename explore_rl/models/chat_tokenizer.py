"""A checkpoint's tokenizer: a `tokenizers.Tokenizer` with its special tokens and its jinja
chat template, rendered as transformers renders it.

Two sources build one: a Hugging Face checkpoint directory (`tokenizer.json`,
`tokenizer_config.json`, `chat_template.jinja`: `CheckpointTokenizer`), and a GGUF file's
metadata (`gguf_tokenizer`). `ChatTokenizer.save` writes the files of the first form, so a
run started from either keeps its tokenizer in its workdir and exports it with the model.
"""
from __future__ import annotations

import functools
import json
import os
from datetime import datetime
from typing import Any, Mapping, Sequence

from explore_rl.models.tokenizer import HFTokenizer

SPECIALS = ("bos", "eos", "pad", "unk")


def read_json(path: str) -> dict | None:
  """A JSON file's contents, or None when it does not exist."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def read_chat_template(path: str) -> str | None:
  """The chat template from `chat_template.jinja` (transformers 5) or `tokenizer_config.json`.

  A list of named templates (`[{"name": ..., "template": ...}]`) gives the one named
  "default".
  """
  jinja = os.path.join(path, "chat_template.jinja")
  if os.path.exists(jinja):
    with open(jinja) as f:
      return f.read()
  template = (read_json(os.path.join(path, "tokenizer_config.json")) or {}).get("chat_template")
  if isinstance(template, list):
    template = {t["name"]: t["template"] for t in template}.get("default")
  return template


@functools.lru_cache(maxsize=16)
def _compile_template(template: str):
  """jinja2 set up as transformers does: sandboxed, trim/lstrip blocks, loop controls,
  `raise_exception`, `strftime_now` and a `tojson` that keeps non-ASCII."""
  import jinja2
  from jinja2.ext import loopcontrols
  from jinja2.sandbox import ImmutableSandboxedEnvironment

  def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)

  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                      extensions=[loopcontrols])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
  return env.from_string(template)


def render_chat_template(template: str, messages: Sequence[Mapping[str, Any]], *,
                         add_generation_prompt: bool = True, **variables) -> str:
  """Render `messages` ([{"role", "content"}]) with a checkpoint's jinja chat template.

  `variables` are what the template may read besides `messages`,
  `add_generation_prompt`, `tools` and `documents` (e.g. bos_token, eos_token).
  """
  return _compile_template(template).render(
      messages=[dict(m) for m in messages], tools=None, documents=None,
      add_generation_prompt=add_generation_prompt, **variables)


class ChatTokenizer(HFTokenizer):
  """A `tokenizers.Tokenizer` with special tokens (`{"bos": "<s>", ...}`, names in
  `SPECIALS`, None when absent) and an optional chat template.

  PAD falls back to EOS; a tokenizer without BOS (Qwen2) adds nothing for `bos=True`.
  With `chat_prompts`, `encode(text, bos=True)` (how the trainer encodes prompts)
  encodes the chat template rendered for one user message with the generation
  prompt, so an instruct model sees its own format (None: whenever there is a
  template). `source` names where the tokenizer came from, for errors.
  """

  def __init__(self, tokenizer, special_tokens: Mapping[str, str | None],
               chat_template: str | None, *, source: str, chat_prompts: bool | None = False):
    tokens = {name: special_tokens.get(name) for name in SPECIALS}
    for name, token in tokens.items():
      if token is not None and tokenizer.token_to_id(token) is None:
        raise ValueError(f"{name}_token {token!r} is not in the vocabulary of {source}")
    super().__init__(tokenizer, bos_token=tokens["bos"], eos_token=tokens["eos"],
                     pad_token=tokens["pad"])
    if self.eos_id is None:
      raise ValueError(f"{source} names no EOS token: generation could never stop")
    self.special_tokens = {f"{k}_token": v for k, v in tokens.items() if v is not None}
    self.chat_template = chat_template
    self.chat_prompts = chat_template is not None if chat_prompts is None else chat_prompts
    if chat_prompts and chat_template is None:
      raise ValueError(f"chat_prompts=True but {source} has no chat template")

  def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], *,
                          add_generation_prompt: bool = True) -> str:
    if self.chat_template is None:
      raise ValueError("this checkpoint has no chat template")
    return render_chat_template(self.chat_template, messages,
                                add_generation_prompt=add_generation_prompt,
                                **self.special_tokens)

  def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
    if bos and self.chat_prompts:  # the template writes any BOS itself
      text, bos = self.apply_chat_template([{"role": "user", "content": text}]), False
    return super().encode(text, bos=bos and self.bos_id is not None, eos=eos)

  def save(self, directory: str) -> None:
    """`tokenizer.json` + `tokenizer_config.json` (special tokens, chat template), which
    `CheckpointTokenizer` and transformers' `AutoTokenizer` read back."""
    os.makedirs(directory, exist_ok=True)
    self._tok.save(os.path.join(directory, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False,
              "add_bos_token": False, "add_eos_token": False, **self.special_tokens}
    if self.chat_template is not None:
      config["chat_template"] = self.chat_template
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
      json.dump(config, f, indent=2, ensure_ascii=False)


def _token_content(token) -> str | None:
  """tokenizer_config stores special tokens as strings or AddedToken dicts."""
  return token.get("content") if isinstance(token, dict) else token


class CheckpointTokenizer(ChatTokenizer):
  """A checkpoint directory's `tokenizer.json` with its special tokens and chat template.

  Special tokens come from `tokenizer_config.json`, else from the ids in `config.json`.
  """

  def __init__(self, path: str, *, chat_prompts: bool | None = False):
    from tokenizers import Tokenizer
    tok_config = read_json(os.path.join(path, "tokenizer_config.json")) or {}
    model_json = read_json(os.path.join(path, "config.json")) or {}
    raw = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
    tokens = {}
    for name in SPECIALS:
      token = _token_content(tok_config.get(f"{name}_token"))
      token_id = model_json.get(f"{name}_token_id")
      if isinstance(token_id, list):  # several EOS ids (Llama 3 instruct): the first
        token_id = token_id[0] if token_id else None
      if token is None and token_id is not None:
        token = raw.id_to_token(token_id)
      tokens[name] = token
    super().__init__(raw, tokens, read_chat_template(path), chat_prompts=chat_prompts,
                     source=f"{path!r} (tokenizer.json, tokenizer_config.json, config.json)")


def load_hf_tokenizer(path: str, *,
                      chat_prompts: bool | None = False) -> CheckpointTokenizer | None:
  """The checkpoint's tokenizer, or None when it has no tokenizer.json."""
  if not os.path.exists(os.path.join(path, "tokenizer.json")):
    return None
  return CheckpointTokenizer(path, chat_prompts=chat_prompts)
