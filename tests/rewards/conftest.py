"""A scripted OpenAI-style chat server on 127.0.0.1 for the LM judge tests.

Each request's `model` names a script: a list of `Reply`s served in order (the
last one repeats). The server records every request and the peak number of
requests in flight. It listens on an ephemeral port of the loopback interface
only; the tests never contact any other address.
"""
from __future__ import annotations

import collections
import dataclasses
import http.server
import json
import re
import threading
import time
from typing import Callable

import pytest

RESPONSE_TAG = re.compile(r'<response number="(\d+)">\n(.*?)\n</response>', re.DOTALL)


@dataclasses.dataclass
class Reply:
  content: str | Callable[[dict], str] = ""  # Message text, or a function of the request JSON.
  status: int = 200
  delay_s: float = 0.0
  raw: bytes | None = None  # Sent verbatim instead of a chat-completion body.
  drip_s: float = 0.0  # > 0: the whole response, status line included, one byte per drip_s.


def cluster_by_text(request: dict) -> str:
  """A perfect judge for exact duplicates: equal texts share an id (ids count down from 90)."""
  responses = RESPONSE_TAG.findall(request["messages"][-1]["content"])
  table: dict[str, int] = {}
  reply = {k: {"strategy": t[:10], "cluster_id": table.setdefault(t, 90 - len(table))}
           for k, t in responses}
  return f"Here is the clustering:\n```json\n{json.dumps(reply)}\n```\nDone."


class FakeChatServer:
  Reply = Reply  # Tests build scripts as chat_server.Reply(...): conftest is not importable.

  def __init__(self):
    self.scripts: dict[str, list[Reply]] = {"by-text": [Reply(cluster_by_text)]}
    self.requests: list[dict] = []
    self.in_flight: collections.Counter[str] = collections.Counter()  # Per model (script).
    self.peak_in_flight: collections.Counter[str] = collections.Counter()
    self._lock = threading.Lock()
    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
    self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"

  def script(self, name: str, *replies: Reply) -> str:
    self.scripts[name] = list(replies)
    return name

  def requests_for(self, model: str) -> list[dict]:
    return [r for r in self.requests if r["json"]["model"] == model]

  def _next_reply(self, model: str) -> Reply:
    with self._lock:
      replies = self.scripts[model]
      return replies.pop(0) if len(replies) > 1 else replies[0]

  def _handler(self):
    fake = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def log_message(self, *args):
        del args

      def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with fake._lock:
          fake.requests.append({"path": self.path, "headers": dict(self.headers), "json": body})
          model = body["model"]
          fake.in_flight[model] += 1
          fake.peak_in_flight[model] = max(fake.peak_in_flight[model], fake.in_flight[model])
        try:
          reply = fake._next_reply(model)
          time.sleep(reply.delay_s)
          content = reply.content(body) if callable(reply.content) else reply.content
          data = reply.raw if reply.raw is not None else json.dumps(
              {"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        finally:
          # Leave the count before the client can see the reply: once it has it, the
          # client may send its next request before this thread runs again.
          with fake._lock:
            fake.in_flight[model] -= 1
        if reply.drip_s > 0:
          self._drip(reply, data)
          return
        try:
          self.send_response(reply.status)
          self.send_header("Content-Type", "application/json")
          self.send_header("Content-Length", str(len(data)))
          self.end_headers()
          self.wfile.write(data)
        except OSError:  # The client timed out and hung up.
          pass

      def _drip(self, reply, data):
        """A server that never lets a socket read time out, and takes ages to finish."""
        self.close_connection = True
        head = (f"HTTP/1.1 {reply.status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        try:
          for i in range(len(head) + len(data)):
            self.wfile.write((head + data)[i:i + 1])
            self.wfile.flush()
            time.sleep(reply.drip_s)
        except OSError:  # The client gave up.
          pass

    return Handler

  def __enter__(self):
    threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
    return self

  def __exit__(self, *exc):
    self._server.shutdown()
    self._server.server_close()


@pytest.fixture(scope="module")
def chat_server():
  with pytest.MonkeyPatch.context() as env, FakeChatServer() as server:
    for name in ("no_proxy", "NO_PROXY"):  # An http_proxy setting must not reroute the tests.
      env.setenv(name, "127.0.0.1")
    yield server
