"""The LM judge against a scripted local chat server: good, malformed, partial, slow,
failing and flaky replies, concurrency, configuration, and the reply parser."""
import json
import time

import numpy as np
import pytest

from explore_rl.rewards.judges import cluster_groups, get_judge
from explore_rl.rewards.lm_judge import backoff_delay
from explore_rl.rewards.lm_judge_protocol import (ReplyError, build_messages,
                                                  extract_json_object, parse_reply)

RESPONSES = ["Factor it: (x-1)(x-2).", "", "Quadratic formula: x = (3 ± 1)/2.",
             "Factor: (x - 1)(x - 2) = 0.", "asdf asdf asdf"]
GOOD = json.dumps({"1": {"strategy": "factoring", "cluster_id": 7},
                   "3": {"strategy": "formula", "cluster_id": 3},
                   "4": {"strategy": "factoring", "cluster_id": 7},
                   "5": {"strategy": "junk", "cluster_id": -1}})
SINGLETONS = [0, -1, 1, 2, 3]  # The fallback: one cluster per non-blank response.


def make_judge(server, model, **kwargs):
  options = dict(base_url=server.base_url, model=model, api_key="test-key", timeout_s=0.2,
                 max_retries=1, backoff_s=0.01, max_backoff_s=0.02)
  return get_judge("lm_judge", **{**options, **kwargs})


def test_good_reply_in_code_fence_is_renumbered(chat_server):
  model = chat_server.script("good", chat_server.Reply(f"Sure!\n```json\n{GOOD}\n```"))
  judge = make_judge(chat_server, model)
  ids = judge.cluster("Solve x^2 - 3x + 2 = 0.", RESPONSES)
  np.testing.assert_array_equal(ids, [0, -1, 1, 0, -1])  # Raw 7, 3, 7, -1 renumbered.
  assert ids.dtype == np.int32
  (request,) = chat_server.requests_for(model)
  assert request["path"] == "/v1/chat/completions"
  assert request["headers"]["Authorization"] == "Bearer test-key"
  assert request["json"]["temperature"] == 0.0
  user = request["json"]["messages"][-1]["content"]
  assert "Solve x^2 - 3x + 2 = 0." in user
  # All non-blank responses in one call, numbered by their position in the group.
  assert [f'<response number="{k}">' in user for k in range(1, 6)] == [1, 0, 1, 1, 1]
  assert judge.metrics()["calls"] == 1 and judge.metrics()["fallbacks"] == 0


@pytest.mark.parametrize("reply,kind", [
    ("I think they all differ.", "malformed"),
    ('{"1": {"cluster_id": "two"}, "3": {"cluster_id": 0}, "4": 0, "5": 0}', "malformed"),
    ('{"1": {"cluster_id": -2}, "3": {"cluster_id": 0}, "4": 0, "5": 0}', "malformed"),
    ('{"answer": 42}', "malformed"),
    ('{"1": {"cluster_id": 0}, "3": {"cluster_id": 1}}', "partial"),
])
def test_unusable_reply_falls_back_and_is_counted(chat_server, reply, kind):
  model = chat_server.script(f"bad-{reply}", chat_server.Reply(reply))
  judge = make_judge(chat_server, model)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  m = judge.metrics()
  assert m[f"fallback_{kind}"] == 1 and m["fallbacks"] == 1
  assert m["requests"] == 1 and m["retries"] == 0  # A bad reply is not retried.


def test_garbled_http_body_falls_back(chat_server):
  model = chat_server.script("garbled", chat_server.Reply(raw=b"<html>gateway</html>"))
  judge = make_judge(chat_server, model)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert judge.metrics()["fallback_malformed"] == 1


def test_slow_server_times_out_retries_then_falls_back(chat_server):
  model = chat_server.script("slow", chat_server.Reply(GOOD, delay_s=1.0))
  judge = make_judge(chat_server, model, max_retries=1)
  start = time.monotonic()
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert time.monotonic() - start < 0.9  # Two 0.2 s attempts + backoff, not the 1 s reply.
  m = judge.metrics()
  assert (m["requests"], m["timeouts"], m["retries"], m["fallback_failed"]) == (2, 2, 1, 1)


def test_server_error_is_retried_with_backoff_then_falls_back(chat_server):
  model = chat_server.script("fail", chat_server.Reply("oops", status=500))
  judge = make_judge(chat_server, model, max_retries=2)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  m = judge.metrics()
  assert (m["requests"], m["http_errors"], m["retries"], m["fallback_failed"]) == (3, 3, 2, 1)


def test_client_error_is_not_retried(chat_server):
  model = chat_server.script("unauthorised", chat_server.Reply("no", status=401))
  judge = make_judge(chat_server, model, max_retries=3)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), SINGLETONS)
  assert (judge.metrics()["requests"], judge.metrics()["fallback_failed"]) == (1, 1)


def test_retry_after_one_failure_succeeds(chat_server):
  model = chat_server.script("flaky", chat_server.Reply("busy", status=503),
                             chat_server.Reply(GOOD))
  judge = make_judge(chat_server, model)
  np.testing.assert_array_equal(judge.cluster("p", RESPONSES), [0, -1, 1, 0, -1])
  m = judge.metrics()
  assert (m["requests"], m["retries"], m["fallbacks"]) == (2, 1, 0)


def test_blank_groups_make_no_call(chat_server):
  judge = make_judge(chat_server, "never-called")
  np.testing.assert_array_equal(judge.cluster("p", ["", "  "]), [-1, -1])
  assert judge.metrics()["requests"] == 0 and not chat_server.requests_for("never-called")


def test_batch_respects_the_concurrency_limit(chat_server):
  model = chat_server.script("slowish", chat_server.Reply(GOOD, delay_s=0.05))
  judge = make_judge(chat_server, model, max_concurrency=2, timeout_s=2.0)
  ids = cluster_groups(judge, ["p"] * 6, [RESPONSES] * 6)
  np.testing.assert_array_equal(ids, [[0, -1, 1, 0, -1]] * 6)
  assert chat_server.peak_in_flight[model] == 2  # Calls overlap, but never more than two.
  assert judge.metrics()["calls"] == 6


def test_configuration_from_environment(chat_server, monkeypatch):
  model = chat_server.script("env", chat_server.Reply(GOOD))
  monkeypatch.setenv("EXPLORE_RL_JUDGE_BASE_URL", chat_server.base_url + "/")
  monkeypatch.setenv("EXPLORE_RL_JUDGE_MODEL", model)
  monkeypatch.setenv("EXPLORE_RL_JUDGE_API_KEY", "env-key")
  np.testing.assert_array_equal(get_judge("lm_judge").cluster("p", RESPONSES), [0, -1, 1, 0, -1])
  assert chat_server.requests_for(model)[-1]["headers"]["Authorization"] == "Bearer env-key"
  monkeypatch.delenv("EXPLORE_RL_JUDGE_API_KEY")
  get_judge("lm_judge").cluster("p", RESPONSES)
  assert "Authorization" not in chat_server.requests_for(model)[-1]["headers"]
  monkeypatch.delenv("EXPLORE_RL_JUDGE_BASE_URL")
  with pytest.raises(ValueError, match="EXPLORE_RL_JUDGE_BASE_URL"):
    get_judge("lm_judge")


def test_extra_body_and_response_clipping(chat_server):
  model = chat_server.script("extra", chat_server.Reply(GOOD))
  judge = make_judge(chat_server, model, max_response_chars=6,
                     extra_body={"response_format": {"type": "json_object"}})
  judge.cluster("p", RESPONSES)
  request = chat_server.requests_for(model)[-1]["json"]
  assert request["response_format"] == {"type": "json_object"}
  assert '<response number="1">\nFactor [...]\n</response>' in request["messages"][-1]["content"]


def test_parse_reply_tolerates_prose_fences_and_string_ids():
  text = 'Thinking {not json}. ```json\n{"1": {"cluster_id": "2"}, "2": 0, "9": 5}\n``` ok'
  assert parse_reply(text, [1, 2]) == {1: 2, 2: 0}
  assert extract_json_object("no braces here") is None
  # A JSON object echoed in the reasoning is skipped for the one naming the responses.
  assert parse_reply('<think>{"plan": 1}</think> {"1": {"cluster_id": 4}}', [1]) == {1: 4}
  assert extract_json_object('{"a": 1} {"b": 2}', ["c"]) == {"a": 1}
  with pytest.raises(ReplyError, match="bad cluster_id") as e:
    parse_reply('{"1": {"cluster_id": true}}', [1])
  assert e.value.kind == "malformed"
  with pytest.raises(ReplyError, match=r"no cluster for responses \[3\]") as e:
    parse_reply('{"1": 0}', [1, 3])
  assert e.value.kind == "partial"


def test_prompt_holds_braces_and_the_reserved_id():
  messages = build_messages("Is {x} = {1}?", [(1, "yes {}")], max_response_chars=100)
  user = messages[-1]["content"]
  assert "Is {x} = {1}?" in user and "yes {}" in user and "cluster_id -1" in user
  assert '{"<number>": {"strategy"' in user


def test_backoff_is_exponential_jittered_and_capped():
  delays = [backoff_delay(k, backoff_s=1.0, max_backoff_s=5.0, u=1.0) for k in range(5)]
  assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]  # min(5, 2^k) at the top of the jitter.
  assert backoff_delay(2, backoff_s=1.0, max_backoff_s=5.0, u=0.0) == 2.0  # Half of 4.


def test_rejects_bad_configuration(chat_server):
  with pytest.raises(ValueError, match="max_concurrency >= 1"):
    make_judge(chat_server, "x", max_concurrency=0)
  with pytest.raises(ValueError, match="must be http"):
    make_judge(chat_server, "x", base_url="127.0.0.1:8000/v1")


def test_token_usage_is_counted_apart_from_flops(chat_server):
  reply = lambda usage: chat_server.Reply(raw=json.dumps(
      {"choices": [{"message": {"role": "assistant", "content": GOOD}}], **usage}).encode())
  model = chat_server.script("usage", reply({"usage": {"prompt_tokens": 120,
                                                      "completion_tokens": 30}}),
                             reply({"usage": {"prompt_tokens": 80, "completion_tokens": 5}}),
                             reply({}))
  judge = make_judge(chat_server, model)
  for _ in range(3):
    judge.cluster("p", RESPONSES)
  m = judge.metrics()
  assert (m["prompt_tokens"], m["completion_tokens"]) == (200, 35)
  assert m["replies_without_usage"] == 1 and m["calls"] == 3
