"""The `lm_judge`: an OpenAI-compatible chat endpoint clusters all responses of a prompt.

One POST to `{base_url}/chat/completions` per prompt group (Poly-EPO's judge,
arXiv 2604.17654; the request and reply format are in `lm_judge_protocol`).
Transport failures (timeouts, connection errors, HTTP 408/409/429/5xx) are
retried with capped exponential backoff and jitter,
  delay_k = min(max_backoff_s, backoff_s · 2^k) · U(0.5, 1);
other 4xx statuses are not retried. One call, retries and backoff included,
never outlasts `deadline_s`: `timeout_s` bounds each socket read, which a server
dripping one byte per second never trips, so a watchdog also shuts the socket at
the deadline, and each read's timeout shrinks to the time left. Replies larger
than `max_reply_bytes` are cut off and count as malformed; the reply parser is
linear in the reply's size and turns nesting of any depth into a fallback.
When a call still fails, or the reply is malformed or partial, the group
falls back to one cluster per response (blank responses stay -1) and the
reason is counted in `metrics()`: a flaky judge never stops a run. The tokens the
server reports using (`usage.prompt_tokens`, `usage.completion_tokens` of each reply)
are counted there too, apart from this project's FLOPs (docs/algorithms.md, "FLOPs"),
and replies without a usage block as `replies_without_usage`. Batches
run on a thread pool of `max_concurrency` workers. Only the standard library
talks HTTP (`http.client`, honouring the http(s)_proxy and no_proxy variables
as urllib does), so the judge adds no dependency.

The API key is read from the environment (`api_key_env`, e.g. "OPENAI_API_KEY",
else $EXPLORE_RL_JUDGE_API_KEY), never from the config: run files record the
config, and a key must not land in them (`explore_rl.training.run_dir` refuses a
config holding one).
"""
from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Mapping, Sequence

import numpy as np

from explore_rl.errors import ConfigError
from explore_rl.rewards.clusters import first_appearance_ids, is_blank, singleton_ids
from explore_rl.rewards.judges import Judge, Signatures
from explore_rl.rewards.lm_judge_protocol import ReplyError, build_messages, parse_reply
from explore_rl.tasks.base import DEGENERATE_ID

ENV_BASE_URL = "EXPLORE_RL_JUDGE_BASE_URL"
ENV_MODEL = "EXPLORE_RL_JUDGE_MODEL"
ENV_API_KEY = "EXPLORE_RL_JUDGE_API_KEY"
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
COUNTERS = ("calls", "requests", "retries", "timeouts", "deadlines", "http_errors",
            "oversized", "fallbacks", "fallback_failed", "fallback_malformed",
            "fallback_partial", "prompt_tokens", "completion_tokens", "replies_without_usage")
_CHUNK = 65536

log = logging.getLogger(__name__)


class CallFailed(Exception):
  """The endpoint gave no usable HTTP reply after all attempts."""


class _ReplyTooLarge(Exception):
  """The reply body is larger than `max_reply_bytes`."""


def _shut(sock: socket.socket) -> None:
  """Wakes a read blocked on `sock` (the deadline watchdog): it then sees end-of-file."""
  try:
    sock.shutdown(socket.SHUT_RDWR)
  except OSError:
    pass


def backoff_delay(attempt: int, *, backoff_s: float, max_backoff_s: float, u: float) -> float:
  """Seconds before retry `attempt` (0-based) for a uniform draw u in [0, 1)."""
  return min(max_backoff_s, backoff_s * 2.0**attempt) * (0.5 + 0.5 * u)


class LMJudge(Judge):
  """Asks a chat model to cluster the responses of each prompt by strategy.

  `base_url` (e.g. "http://localhost:8000/v1") and `model` default to the
  environment variables EXPLORE_RL_JUDGE_BASE_URL / _MODEL. The key comes from
  the environment variable named by `api_key_env` (e.g. "OPENAI_API_KEY"; an
  unset one is an error), else from $EXPLORE_RL_JUDGE_API_KEY; no key sends no
  Authorization header (local vLLM / SGLang servers). `api_key` passes a key
  from Python code; configs must not hold one. `timeout_s` bounds each socket
  operation, `deadline_s` the whole call, retries and backoff included;
  `max_reply_bytes` caps the reply body. `extra_body` is merged into the request
  JSON (e.g. {"response_format": {"type": "json_object"}} where the server has it).
  """

  def __init__(self, *, base_url: str | None = None, model: str | None = None,
               api_key_env: str | None = None, api_key: str | None = None,
               timeout_s: float = 60.0, deadline_s: float = 180.0, max_retries: int = 3,
               backoff_s: float = 1.0, max_backoff_s: float = 30.0, max_concurrency: int = 8,
               temperature: float = 0.0, max_tokens: int = 4096,
               max_response_chars: int = 4000, max_reply_bytes: int = 1 << 20,
               extra_body: Mapping[str, Any] | None = None, seed: int = 0):
    base_url = base_url or os.environ.get(ENV_BASE_URL)
    self.model = model or os.environ.get(ENV_MODEL)
    if not base_url or not self.model:
      raise ValueError(f"lm_judge needs base_url= and model= (or ${ENV_BASE_URL} and "
                       f"${ENV_MODEL}); got base_url={base_url!r}, model={self.model!r}")
    if max_concurrency < 1 or max_retries < 0:
      raise ValueError(f"need max_concurrency >= 1 and max_retries >= 0, got "
                       f"{max_concurrency} and {max_retries}")
    if not (timeout_s > 0 and deadline_s > 0 and max_reply_bytes > 0):
      raise ValueError(f"need timeout_s, deadline_s and max_reply_bytes > 0, got {timeout_s}, "
                       f"{deadline_s} and {max_reply_bytes}")
    url = urllib.parse.urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
      raise ValueError(f"lm_judge base_url must be http(s)://..., got {base_url!r}")
    self.url = base_url.rstrip("/") + "/chat/completions"
    self._scheme, self._host, self._port = url.scheme, url.hostname, url.port
    self._path = url.path.rstrip("/") + "/chat/completions"
    if api_key is None and api_key_env:
      api_key = os.environ.get(api_key_env)
      if not api_key:
        raise ConfigError(f"lm_judge: api_key_env={api_key_env!r} names an unset or empty "
                          f"environment variable; export {api_key_env}=<key>")
    api_key = api_key or os.environ.get(ENV_API_KEY)
    self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
      self._headers["Authorization"] = f"Bearer {api_key}"
    self.timeout_s = timeout_s
    self.deadline_s = deadline_s
    self.max_retries = max_retries
    self.backoff_s = backoff_s
    self.max_backoff_s = max_backoff_s
    self.max_concurrency = max_concurrency
    self.max_response_chars = max_response_chars
    self.max_reply_bytes = max_reply_bytes
    self._body = {"model": self.model, "temperature": temperature, "max_tokens": max_tokens,
                  **(extra_body or {})}
    self._rng = random.Random(seed)
    self._lock = threading.Lock()
    self._counts = collections.Counter({name: 0 for name in COUNTERS})

  def __repr__(self) -> str:  # Never shows the headers: they hold the key.
    return f"LMJudge(url={self.url!r}, model={self.model!r})"

  def _count(self, name: str, n: int = 1) -> None:
    with self._lock:
      self._counts[name] += n

  def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the endpoint (or to its proxy, as urllib would pick) and the path."""
    target = f"{self._host}:{self._port}" if self._port else self._host
    proxy = None
    if not urllib.request.proxy_bypass(target):
      proxy = urllib.request.getproxies().get(self._scheme)
    https = self._scheme == "https"
    if not proxy:
      cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
      return cls(self._host, self._port, timeout=timeout), self._path
    proxy_url = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if https:  # Tunnel through the proxy (CONNECT), TLS end to end.
      conn = http.client.HTTPSConnection(proxy_url.hostname, proxy_url.port, timeout=timeout)
      conn.set_tunnel(self._host, self._port)
      return conn, self._path
    conn = http.client.HTTPConnection(proxy_url.hostname, proxy_url.port, timeout=timeout)
    return conn, self.url  # A plain-HTTP proxy takes the absolute URL.

  def _attempt(self, payload: bytes, deadline: float) -> tuple[int, bytes]:
    """One POST: (status, body), all of it before `deadline` (time.monotonic)."""

    def time_left() -> float:
      left = deadline - time.monotonic()
      if left <= 0:
        raise TimeoutError("deadline passed")
      return min(self.timeout_s, left)

    conn, path = self._connection(time_left())
    held: list[socket.socket] = []  # conn.sock is None again once a reply owns the socket.

    def abort():
      for sock in (conn.sock, *held):
        if sock is not None:
          _shut(sock)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), abort)
    watchdog.daemon = True
    watchdog.start()  # Before connect(): a TLS handshake can be dripped too.
    try:
      conn.connect()
      sock = conn.sock
      held.append(sock)
      conn.request("POST", path, body=payload, headers=self._headers)
      sock.settimeout(time_left())
      reply = conn.getresponse()
      if reply.length is not None and reply.length > self.max_reply_bytes:
        raise _ReplyTooLarge(f"Content-Length {reply.length}")
      chunks, size = [], 0
      while True:
        sock.settimeout(time_left())
        chunk = reply.read1(_CHUNK)
        if not chunk:
          break
        size += len(chunk)
        if size > self.max_reply_bytes:
          raise _ReplyTooLarge(f"more than {self.max_reply_bytes} bytes")
        chunks.append(chunk)
      time_left()  # A watchdog shutdown reads as end-of-file: the reply is cut.
      return reply.status, b"".join(chunks)
    finally:
      watchdog.cancel()
      conn.close()

  def _post(self, payload: bytes) -> bytes:
    """POSTs with retries within `deadline_s`; returns the 2xx body or raises CallFailed
    (ReplyError for a reply over `max_reply_bytes`: not retried)."""
    deadline = time.monotonic() + self.deadline_s
    error, attempt = "no attempt", -1
    for attempt in range(self.max_retries + 1):
      if attempt:
        with self._lock:
          u = self._rng.random()
        delay = backoff_delay(attempt - 1, backoff_s=self.backoff_s,
                              max_backoff_s=self.max_backoff_s, u=u)
        if time.monotonic() + delay >= deadline:
          self._count("deadlines")
          error += f"; no time left for a retry within deadline_s={self.deadline_s}"
          break
        self._count("retries")
        time.sleep(delay)
      self._count("requests")
      try:
        status, body = self._attempt(payload, deadline)
      except _ReplyTooLarge as e:
        self._count("oversized")
        raise ReplyError("malformed", f"reply too large ({e}; max_reply_bytes="
                                      f"{self.max_reply_bytes})") from None
      except (OSError, http.client.HTTPException) as e:  # Timeouts, resets, refusals.
        if time.monotonic() >= deadline:
          self._count("deadlines")
          error = f"deadline_s={self.deadline_s} passed ({e!r})"
          break
        if isinstance(e, TimeoutError):
          self._count("timeouts")
        error = repr(e)
        continue
      if 200 <= status < 300:
        return body
      self._count("http_errors")
      error = f"HTTP {status}"
      if status not in RETRY_STATUSES:
        break
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
      body = json.loads(self._post(payload))  # One decode of a capped body: linear.
      self._count_usage(body)
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
    except RecursionError:  # A body nested deeper than the decoder's limit.
      return self._fallback("malformed", ValueError("reply JSON nested too deeply"), responses)
    keys = [raw.get(i + 1, DEGENERATE_ID) for i in range(len(responses))]
    return first_appearance_ids(keys, [k == DEGENERATE_ID for k in keys])

  def _count_usage(self, body: Any) -> None:
    """Adds a chat-completion reply's token usage to the counters."""
    usage = body.get("usage") if isinstance(body, dict) else None
    counts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")] \
        if isinstance(usage, dict) else []
    if not counts or not all(isinstance(n, int) and n >= 0 for n in counts):
      self._count("replies_without_usage")
      return
    self._count("prompt_tokens", counts[0])
    self._count("completion_tokens", counts[1])

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
