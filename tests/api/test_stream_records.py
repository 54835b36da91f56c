"""Streams are runs like the others: one record from the run summary, however they end."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

MSG = [{"role": "user", "content": "stream me"}]


def _stream(client: httpx.Client, rid: str, **request: object) -> tuple[int, str, httpx.Headers]:
    body = {"request": {"messages": MSG, "stream": True, **request}}
    with client.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
        return r.status_code, "".join(r.iter_text()), r.headers


def test_a_stream_after_a_failover_is_recorded_with_both_attempts(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.script("small-up", [{"status": 401}])
    rid = f"req-{uuid.uuid4().hex}"
    status, text, headers = _stream(client, rid, model_hint="small")
    assert status == 200 and text.rstrip().endswith("data: [DONE]")
    assert headers["x-tokenhub-executor"] == "local"
    [row] = wait_rows(gateway, rid)
    assert (row["kind"], row["status"], row["executor"]) == ("stream", "ok", "local")
    assert [a["outcome"] for a in row["attempts"]] == ["fatal", "ok"]
    assert row["model"] == headers["x-tokenhub-model"] != "small"
    assert row["output_tokens"] > 0 and row["cost_usd"] > 0
    metrics = client.get("/metrics").text
    assert 'tokenhub_failovers_total{kind="stream"} 1.0' in metrics
    assert 'tokenhub_executor_total{executor="local",kind="stream"} 1.0' in metrics


def test_a_stream_that_fails_before_its_first_byte_is_logged(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.script("*", [{"status": 401}] * 8)
    rid = f"req-{uuid.uuid4().hex}"
    status, text, headers = _stream(client, rid)
    assert status == 502, text
    assert headers["x-tokenhub-executor"] == "local"
    [row] = wait_rows(gateway, rid)
    assert (row["kind"], row["status"], row["http_status"]) == ("stream", "error", 502)
    assert row["error_class"] == "fatal" and len(row["attempts"]) >= 2


def test_a_stream_cut_mid_answer_is_recorded_as_an_error(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.script("claude-up", [{"kind": "cut_stream"}])
    rid = f"req-{uuid.uuid4().hex}"
    status, text, _ = _stream(client, rid, model_hint="claude")
    assert status == 200 and "upstream_stream_error" in text
    [row] = wait_rows(gateway, rid)
    assert (row["status"], row["http_status"], row["model"]) == ("error", 200, "claude")
    assert row["error_class"] == "transient"


def _content(text: str) -> str:
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events
                   if e.get("choices"))


def test_strip_think_applies_to_streams(client: httpx.Client, gateway: ThreadedServer,
                                        fake: FakeProvider) -> None:
    # the fake cuts its text in three: both tags end up split across chunks
    fake.script("claude-up", [{"content": "<think>a long chain of thought</think>\n\n"
                                          "The answer is 42."}])
    rid = f"req-{uuid.uuid4().hex}"
    body = {"request": {"messages": MSG, "stream": True, "model_hint": "claude"},
            "output_format": {"strip_think": True}}
    with client.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200 and text.rstrip().endswith("data: [DONE]")
    assert _content(text) == "The answer is 42."
    [row] = wait_rows(gateway, rid)
    assert row["status"] == "ok"


def test_a_streamed_answer_failing_its_json_check_is_reported_in_band(
        client: httpx.Client, gateway: ThreadedServer, fake: FakeProvider) -> None:
    fake.script("claude-up", [{"content": "not json at all"}, {"content": '{"a": 1}'}])
    body = {"request": {"messages": MSG, "stream": True, "model_hint": "claude"},
            "output_format": {"type": "json", "schema": {"type": "object"}}}
    rid = f"req-{uuid.uuid4().hex}"
    with client.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
        text = "".join(r.iter_text())
    assert r.status_code == 200
    errors = [json.loads(line[6:])["error"] for line in text.splitlines()
              if line.startswith('data: {"error"')]
    assert [e["type"] for e in errors] == ["output_validation_failed"]
    assert "[DONE]" not in text
    [row] = wait_rows(gateway, rid)
    assert (row["status"], row["error_class"]) == ("error", "output_validation_failed")
    assert row["cost_usd"] > 0  # the model answered and billed
    rid = f"req-{uuid.uuid4().hex}"
    with client.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
        text = "".join(r.iter_text())
    assert "output_validation_failed" not in text and text.rstrip().endswith("[DONE]")
    [row] = wait_rows(gateway, rid)
    assert row["status"] == "ok"
