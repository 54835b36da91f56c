"""Async runs need Temporal: without it every /v1/runs call is a 503 saying so (never run
in-process); bad bodies are 400s naming the field."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.server import free_port

MSG = [{"role": "user", "content": "hi"}]


def test_without_temporal_async_runs_are_503_naming_the_engine(client: httpx.Client) -> None:
    r = client.post("/v1/runs", json={"chat": {"request": {"messages": MSG}}})
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["type"] == "service_unavailable"
    assert "workflow engine" in err["message"] and "Temporal" in err["message"]
    for path in ("/v1/runs", "/v1/runs/req-x", "/v1/runs/req-x/events"):
        assert client.get(path).status_code == 503, path


def test_temporal_down_is_a_503_not_a_local_run(gateway_factory: Any) -> None:
    srv = gateway_factory(temporal_enabled=True,
                          temporal_address=f"127.0.0.1:{free_port()}",
                          temporal_connect_timeout_s=1.0, temporal_start_timeout_s=1.0)
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        r = c.post("/v1/runs", json={"chat": {"request": {"messages": MSG}}})
        assert r.status_code == 503, r.text
        assert "never run in-process" in r.json()["error"]["message"]
        # a synchronous chat still falls back to the in-process runtime
        r = c.post("/v1/chat", json={"request": {"messages": MSG}})
        assert r.status_code == 200 and r.headers["x-tokenhub-executor"] == "local"


def test_bad_run_bodies_are_400(client: httpx.Client) -> None:
    chat = {"request": {"messages": MSG}}
    for body, field in [
        ({}, "chat"),
        ({"chat": chat, "plan": {"request": {"messages": MSG}}}, "exactly one"),
        ({"chat": {"request": {"messages": MSG, "stream": True}}}, "stream"),
        ({"chat": chat, "deadline": "2030-01-01T00:00:00"}, "time zone"),
        ({"chat": chat, "deadline": "yesterday"}, "deadline"),
        ({"chat": chat, "surprise": 1}, "surprise"),
    ]:
        r = client.post("/v1/runs", json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.text, (field, r.text)
