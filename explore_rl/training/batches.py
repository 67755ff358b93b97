"""Text -> arrays: prompts left-padded to P, responses right-padded to M (+ EOS)."""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from explore_rl.models.tokenizer import encode_prompts


class TokenBatch(NamedTuple):
  prompt_tokens: np.ndarray    # int32 [B, P], left-padded, starts with BOS
  prompt_valid: np.ndarray     # bool  [B, P]
  response_tokens: np.ndarray  # int32 [B, M], right-padded, ends with EOS if it fits
  response_mask: np.ndarray    # bool  [B, M]


def encode_responses(tokenizer, responses: Sequence[str], length: int):
  """Right-padded responses with EOS; longer ones are cut (and lose their EOS)."""
  tokens = np.full((len(responses), length), tokenizer.pad_id, np.int32)
  mask = np.zeros((len(responses), length), bool)
  for i, r in enumerate(responses):
    ids = tokenizer.encode(r, eos=True)[:length]
    tokens[i, :len(ids)] = ids
    mask[i, :len(ids)] = True
  return tokens, mask


def encode(tokenizer, prompts: Sequence[str], responses: Sequence[str], *, prompt_len: int,
           response_len: int) -> TokenBatch:
  return TokenBatch(*encode_prompts(tokenizer, prompts, prompt_len),
                    *encode_responses(tokenizer, responses, response_len))
