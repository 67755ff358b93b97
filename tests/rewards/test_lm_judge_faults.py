"""The LM judge under hostile servers: deep nesting, dripped replies, huge replies, and
keys kept out of configs. Each case must cost at most a counted fallback, quickly."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from explore_rl.errors import ConfigError
from explore_rl.rewards.judges import get_judge
from explore_rl.rewards.lm_judge_protocol import ReplyError, extract_json_object, parse_reply

RESPONSES = ["Factor it.", "", "Quadratic formula.", "Factor: (x-1)(x-2).", "asdf"]
GOOD = json.dumps({"1": {"cluster_id": 7}, "3": {"cluster_id": 3}, "4": {"cluster_id": 7},
                   "5": {"cluster_id": -1}})
SINGLETONS = [0, -1, 1, 2, 3]


def make_judge(server, model, **kwargs):
  options = dict(base_url=server.base_url, model=model, timeout_s=0.5, max_retries=1,
                 backoff_s=0.01, max_backoff_s=0.02)
  return get_judge("lm_judge", **{**options, **kwargs})


@pytest.mark.parametrize("name,reply", [
    ("deep-body-list", {"raw": b"[" * 100_000 + b"]" * 100_000}),
    ("deep-body-object", {"raw": b'{"a":' * 50_000 + b"1" + b"}" * 50_000}),
    ("deep-content", {"content": '{"1":' * 50_000 + "0" + "}" * 50_000}),
    ("deep-content-unclosed", {"content": '{"1": [' * 50_000}),
])
def test_deeply_nested_json_falls_back_instead_of_raising(chat_server, name, reply):
  model = chat_server.script(name, chat_server.Reply(**reply))
  judge = make_judge(chat_server, model)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  m = judge.metrics()
  assert (m["fallbacks"], m["fallback_malformed"], m["requests"]) == (1, 1, 1)


def test_answer_after_nested_junk_or_inside_a_wrapper_is_found():
  junk = '{"plan": ' * 50  # Echoed, never closed: each of its braces is a failed attempt.
  assert parse_reply(junk + GOOD, [1, 3, 4, 5]) == {1: 7, 3: 3, 4: 7, 5: -1}
  assert parse_reply(f'{{"clusters": {GOOD}}}', [1, 3]) == {1: 7, 3: 3}
  # Past the decoder's recursion limit the search may give up (its work is capped),
  # but it says so as a malformed reply, quickly, never as a RecursionError.
  start = time.perf_counter()
  with pytest.raises(ReplyError) as e:
    parse_reply('{"plan": ' * 5000 + GOOD, [1, 3, 4, 5])
  assert e.value.kind == "malformed" and time.perf_counter() - start < 0.5


def test_dripping_server_is_cut_off_at_the_deadline(chat_server):
  # One byte every 50 ms: no single read ever waits the 0.5 s timeout_s, and the whole
  # reply takes ~15 s; the call must give up at deadline_s with retries included.
  model = chat_server.script("drip", chat_server.Reply(GOOD, drip_s=0.05))
  judge = make_judge(chat_server, model, deadline_s=1.0, max_retries=3)
  start = time.monotonic()
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert time.monotonic() - start < 2.5
  m = judge.metrics()
  assert (m["fallback_failed"], m["deadlines"], m["requests"]) == (1, 1, 1)


def test_retries_stop_at_the_deadline(chat_server):
  model = chat_server.script("always-503", chat_server.Reply("busy", status=503))
  judge = make_judge(chat_server, model, deadline_s=0.5, max_retries=1000, backoff_s=0.05,
                     max_backoff_s=0.1)
  start = time.monotonic()
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert time.monotonic() - start < 1.5
  m = judge.metrics()
  assert m["deadlines"] == 1 and 2 <= m["requests"] < 30 and m["fallback_failed"] == 1


def test_slow_first_byte_is_bounded_by_the_deadline_too(chat_server):
  model = chat_server.script("silent", chat_server.Reply(GOOD, delay_s=3.0))
  judge = make_judge(chat_server, model, timeout_s=10.0, deadline_s=0.5)
  start = time.monotonic()
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert time.monotonic() - start < 1.5 and judge.metrics()["deadlines"] == 1


HOSTILE_240KB = {
    "stray-braces": "{" * 240_000,
    "key-braces": '{"' * 120_000,
    "unclosed-nesting": '{"a": 1, "b": ' * 900 + '"' + "x" * 228_000,
    "many-objects": '{"x": {"y": 1}} ' * 15_000,
    "latex-then-answer": "\\frac{a}{b} {x} " * 15_000 + '{"1": {"cluster_id": 2}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_240KB))
def test_parsing_a_240kb_reply_is_fast(name):
  text = HOSTILE_240KB[name]
  assert len(text) >= 200_000
  start = time.perf_counter()
  try:
    parse_reply(text, [1, 2])
  except ReplyError:
    pass
  assert time.perf_counter() - start < 1.0  # Was 18 s for "stray-braces" (quadratic).


def test_parse_time_grows_linearly():
  def cost(n):
    start = time.perf_counter()
    extract_json_object('{"' * n + "{" * n, ["1"])
    return time.perf_counter() - start

  small, large = min(cost(20_000) for _ in range(3)), min(cost(160_000) for _ in range(3))
  assert large < 8 * 4 * max(small, 1e-3)  # 8x the input: ~8x the time, far below 64x.


def test_huge_reply_is_capped_and_counted(chat_server):
  model = chat_server.script("huge", chat_server.Reply("x" * 300_000 + GOOD))
  judge = make_judge(chat_server, model, max_reply_bytes=100_000, max_retries=3)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  m = judge.metrics()
  assert (m["oversized"], m["fallback_malformed"], m["requests"]) == (1, 1, 1)
  judge = make_judge(chat_server, model)  # The default cap (1 MiB) reads it.
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), [0, -1, 1, 0, -1])


def test_key_comes_from_the_named_environment_variable(chat_server, monkeypatch):
  model = chat_server.script("keyed", chat_server.Reply(GOOD))
  monkeypatch.setenv("MY_JUDGE_KEY", "sk-from-env")
  judge = make_judge(chat_server, model, api_key_env="MY_JUDGE_KEY")
  judge.cluster("p", RESPONSES)
  assert chat_server.requests_for(model)[-1]["headers"]["Authorization"] == "Bearer sk-from-env"
  assert "sk-from-env" not in repr(judge)
  monkeypatch.delenv("MY_JUDGE_KEY")
  with pytest.raises(ConfigError, match="api_key_env='MY_JUDGE_KEY' names an unset"):
    make_judge(chat_server, model, api_key_env="MY_JUDGE_KEY")


def test_rejects_bad_limits(chat_server):
  for bad in (dict(deadline_s=0), dict(timeout_s=-1), dict(max_reply_bytes=0)):
    with pytest.raises(ValueError, match="deadline_s and max_reply_bytes > 0"):
      make_judge(chat_server, "x", **bad)
