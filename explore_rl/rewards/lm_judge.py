"""The `lm_judge`: an OpenAI-compatible chat endpoint clusters all responses of a prompt.

One POST to `{base_url}/chat/completions` per prompt group (Poly-EPO's judge,
arXiv 2604.17654; the request and reply format are in `lm_judge_protocol`).
Transport failures (timeouts, connection errors, HTTP 408/409/429/5xx) are
retried with capped exponential backoff and jitter,
  delay_k = min(max_backoff_s, backoff_s · 2^k) · U(0.5, 1);
other 4xx statuses are not retried. When a call still fails, or the reply is
malformed or partial, the group falls back to one cluster per response (blank
responses stay -1) and the reason is counted in `metrics()`: a flaky judge
never stops a run. Batches run on a thread pool of `max_concurrency` workers.
Only the standard library talks HTTP, so the judge adds no dependency.
"""
from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Mapping, Sequence

import numpy as np

from explore_rl.rewards.clusters import first_appearance_ids, is_blank, singleton_ids
from explore_rl.rewards.judges import JUDGES, Judge, Signatures
from explore_rl.rewards.lm_judge_protocol import ReplyError, build_messages, parse_reply
from explore_rl.tasks.base import DEGENERATE_ID

ENV_BASE_URL = "EXPLORE_RL_JUDGE_BASE_URL"
ENV_MODEL = "EXPLORE_RL_JUDGE_MODEL"
ENV_API_KEY = "EXPLORE_RL_JUDGE_API_KEY"
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
COUNTERS = ("calls", "requests", "retries", "timeouts", "http_errors", "fallbacks",
            "fallback_failed", "fallback_malformed", "fallback_partial")

log = logging.getLogger(__name__)


class CallFailed(Exception):
  """The endpoint gave no usable HTTP reply after all attempts."""


def backoff_delay(attempt: int, *, backoff_s: float, max_backoff_s: float, u: float) -> float:
  """Seconds before retry `attempt` (0-based) for a uniform draw u in [0, 1)."""
  return min(max_backoff_s, backoff_s * 2.0**attempt) * (0.5 + 0.5 * u)


@JUDGES.register("lm_judge")
class LMJudge(Judge):
  """Asks a chat model to cluster the responses of each prompt by strategy.

  `base_url` (e.g. "http://localhost:8000/v1"), `model` and `api_key` default to
  the environment variables EXPLORE_RL_JUDGE_BASE_URL / _MODEL / _API_KEY; no key
  sends no Authorization header (local vLLM / SGLang servers). `timeout_s` is the
  socket timeout of one attempt; `extra_body` is merged into the request JSON
  (e.g. {"response_format": {"type": "json_object"}} where the server has it).
  """

  def __init__(self, *, base_url: str | None = None, model: str | None = None,
               api_key: str | None = None, timeout_s: float = 60.0, max_retries: int = 3,
               backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_concurrency: int = 8,
               temperature: float = 0.0, max_tokens: int = 4096,
               max_response_chars: int = 4000, extra_body: Mapping[str, Any] | None = None,
               seed: int = 0):
    base_url = base_url or os.environ.get(ENV_BASE_URL)
    self.model = model or os.environ.get(ENV_MODEL)
    if not base_url or not self.model:
      raise ValueError(f"lm_judge needs base_url= and model= (or ${ENV_BASE_URL} and "
                       f"${ENV_MODEL}); got base_url={base_url!r}, model={self.model!r}")
    if max_concurrency < 1 or max_retries < 0:
      raise ValueError(f"need max_concurrency >= 1 and max_retries >= 0, got "
                       f"{max_concurrency} and {max_retries}")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
      raise ValueError(f"lm_judge base_url must be http(s)://..., got {base_url!r}")
    self.url = base_url.rstrip("/") + "/chat/completions"
    api_key = api_key or os.environ.get(ENV_API_KEY)
    self._headers = {"Content-Type": "application/json"}
    if api_key:
      self._headers["Authorization"] = f"Bearer {api_key}"
    self.timeout_s = timeout_s
    self.max_retries = max_retries
    self.backoff_s = backoff_s
    self.max_backoff_s = max_backoff_s
    self.max_concurrency = max_concurrency
    self.max_response_chars = max_response_chars
    self._body = {"model": self.model, "temperature": temperature, "max_tokens": max_tokens,
                  **(extra_body or {})}
    self._rng = random.Random(seed)
    self._lock = threading.Lock()
    self._counts = collections.Counter({name: 0 for name in COUNTERS})

  def _count(self, name: str, n: int = 1) -> None:
    with self._lock:
      self._counts[name] += n

  def _post(self, payload: bytes) -> bytes:
    """POSTs with retries; returns the 2xx body or raises CallFailed."""
    for attempt in range(self.max_retries + 1):
      if attempt:
        self._count("retries")
        with self._lock:
          u = self._rng.random()
        time.sleep(backoff_delay(attempt - 1, backoff_s=self.backoff_s,
                                 max_backoff_s=self.max_backoff_s, u=u))
      self._count("requests")
      request = urllib.request.Request(self.url, data=payload, headers=self._headers,
                                       method="POST")
      try:
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
          return reply.read()
      except urllib.error.HTTPError as e:
        e.close()
        self._count("http_errors")
        error = f"HTTP {e.code}"
        if e.code not in RETRY_STATUSES:
          break
      except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, resets.
        if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
          self._count("timeouts")
        error = repr(e)
    raise CallFailed(f"{self.url}: {error} after {attempt + 1} attempt(s)")

  def cluster(self, prompt: str, responses: Sequence[str], *,
              signatures: Signatures = None) -> np.ndarray:
    del signatures  # The judge reads the texts.
    numbered = [(i + 1, r) for i, r in enumerate(responses) if not is_blank(r)]
    if not numbered:
      return np.full(len(responses), DEGENERATE_ID, np.int32)
    self._count("calls")
    messages = build_messages(prompt, numbered, max_response_chars=self.max_response_chars)
    payload = json.dumps({**self._body, "messages": messages}).encode()
    try:
      body = json.loads(self._post(payload))
      content = body["choices"][0]["message"]["content"]
      if not isinstance(content, str):
        raise ReplyError("malformed", f"non-text message content {content!r}")
      raw = parse_reply(content, [k for k, _ in numbered])
    except CallFailed as e:
      return self._fallback("failed", e, responses)
    except ReplyError as e:
      return self._fallback(e.kind, e, responses)
    except (ValueError, KeyError, IndexError, TypeError) as e:  # Not a chat-completion body.
      return self._fallback("malformed", e, responses)
    keys = [raw.get(i + 1, DEGENERATE_ID) for i in range(len(responses))]
    return first_appearance_ids(keys, [k == DEGENERATE_ID for k in keys])

  def _fallback(self, kind: str, error: Exception, responses: Sequence[str]) -> np.ndarray:
    self._count("fallbacks")
    self._count(f"fallback_{kind}")
    log.warning("lm_judge fell back to one cluster per response (%s): %s", kind, error)
    return singleton_ids(responses)

  def cluster_batch(self, prompts: Sequence[str], groups: Sequence[Sequence[str]], *,
                    signatures: Sequence[Signatures] | None = None) -> list[np.ndarray]:
    """Clusters the groups concurrently, at most `max_concurrency` calls in flight."""
    del signatures
    with concurrent.futures.ThreadPoolExecutor(self.max_concurrency) as pool:
      return list(pool.map(self.cluster, prompts, groups))

  def metrics(self) -> dict[str, float]:
    with self._lock:
      return dict(self._counts)
