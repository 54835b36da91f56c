"""Streams are charged on the tokens the upstream produced (issue 13): with or without a
usage event from the provider, and when the client hangs up before the end."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx

from tests.api.logrows import wait_rows
from tests.api.test_security_api import issue
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-tests-0123456789"
ANSWER = "x" * 40  # 10 tokens at 4 characters a token
MSG = [{"role": "user", "content": "hi"}]  # 1 token by the gateway's estimate


def _events(lines: Any) -> Any:
    for line in lines:
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[6:])


def _wait_done(fake: FakeProvider, n: int) -> list[dict[str, Any]]:
    """The fake's calls once ``n`` of them ended (sent in full, or cut by the gateway)."""
    deadline = time.monotonic() + 10
    while True:
        calls = fake.calls()
        if len(calls) >= n or time.monotonic() > deadline:
            return calls
        time.sleep(0.05)


def test_a_stream_without_provider_usage_is_charged_by_count(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.set_default(content=ANSWER, stream_usage=False)  # like llama.cpp
    rid = f"req-{uuid.uuid4().hex}"
    body = {"model": "small", "messages": MSG, "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body,
                       headers={"X-Request-ID": rid}) as r:
        events = list(_events(r.iter_lines()))
    assert fake.calls()[0]["params"]["stream_options"] == {"include_usage": True}  # asked
    usage = events[-1]["usage"]
    assert usage == {"prompt_tokens": 1, "completion_tokens": 10, "total_tokens": 11}
    [row] = wait_rows(gateway, rid)
    assert (row["input_tokens"], row["output_tokens"]) == (1, 10)
    assert row["cost_usd"] == 1 * 0.0001 / 1000 + 10 * 0.0002 / 1000


def test_a_provider_usage_event_wins_over_the_count(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.set_default(content=ANSWER)
    rid = f"req-{uuid.uuid4().hex}"
    body = {"model": "small", "messages": MSG, "stream": True,
            "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body,
                       headers={"X-Request-ID": rid}) as r:
        usage = list(_events(r.iter_lines()))[-1]["usage"]
    assert usage == {"prompt_tokens": 2, "completion_tokens": 11, "total_tokens": 13}  # fake's
    [row] = wait_rows(gateway, rid)
    assert (row["input_tokens"], row["output_tokens"]) == (2, 11)


def test_a_client_hanging_up_after_the_first_chunk_stops_the_upstream_and_is_charged(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    for hint in ("small", "claude"):  # OpenAI wire (usage only at the end), Anthropic wire
        fake.reset()
        fake.set_default(content=ANSWER, chunk_delay_ms=300)
        rid = f"req-{uuid.uuid4().hex}"
        body = {"request": {"messages": MSG, "model_hint": hint, "stream": True}}
        with client.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
            for ev in _events(r.iter_lines()):
                if ev["choices"][0]["delta"].get("content"):
                    break  # the first piece of text: the client goes away
        [row] = wait_rows(gateway, rid)
        assert row["kind"] == "stream" and row["model"] == hint
        assert row["input_tokens"] >= 1 and row["output_tokens"] >= 1, row  # what it sent
        assert row["output_tokens"] < 10 and row["cost_usd"] > 0
        [call] = _wait_done(fake, 1)
        assert call["completed"] is False  # the gateway closed the upstream


def test_hanging_up_before_the_usage_event_still_exhausts_the_budget(
        gateway_factory: Any, fake: FakeProvider) -> None:
    """The probe of issue 13: a key with a budget for 4 answers got 12 by hanging up
    before the final usage chunk. Each answer now costs its 1 + 10 tokens."""
    srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                          rate_limit_rps=1000, rate_limit_burst=1000)
    fake.set_default(content=ANSWER, usage_delay_ms=3000)  # the usage event comes late
    answer_usd = 1 * 0.0001 / 1000 + 10 * 0.0002 / 1000  # the reservation too (max_tokens)
    token, key_id = issue(srv, monthly_budget_usd=answer_usd * 4 * (1 + 1e-9))
    body = {"model": "small", "messages": MSG, "stream": True, "max_tokens": 10,
            "stream_options": {"include_usage": True}}
    served, rids = 0, []
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        for _ in range(12):
            rid = f"req-{uuid.uuid4().hex}"
            with c.stream("POST", "/v1/chat/completions", json=body,
                          headers={"X-Request-ID": rid}) as r:
                if r.status_code != 200:
                    assert r.status_code == 403
                    r.read()
                    assert r.json()["error"]["type"] == "budget_exceeded"
                    break
                text = ""
                for ev in _events(r.iter_lines()):
                    text += ev["choices"][0]["delta"].get("content", "")
                    if ev["choices"][0]["finish_reason"]:
                        break  # the whole answer read; hang up before the usage event
            assert text == ANSWER
            served += 1
            rids.append(rid)
            wait_rows(srv, rid)  # settled with the record, in the finishing task
    assert served == 4
    for rid in rids:
        [row] = wait_rows(srv, rid)
        assert (row["input_tokens"], row["output_tokens"]) == (1, 10)
        assert row["api_key_id"] == key_id
