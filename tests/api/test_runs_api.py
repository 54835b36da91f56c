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


def _upload(c: httpx.Client, data: bytes) -> httpx.Response:
    return c.post("/v1/files", files={"file": ("b.jsonl", data)}, data={"purpose": "batch"})


def test_upload_limits_name_the_setting(gateway_factory: Any) -> None:
    srv = gateway_factory(max_batch_file_bytes=2048, max_batch_items=3)
    line = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat", "body": {}}\n'
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        r = _upload(c, line * 4)
        assert r.status_code == 400 and "TOKENHUB_MAX_BATCH_ITEMS" in r.text, r.text
        r = _upload(c, line + b" " * 3000 + b"\n")
        assert r.status_code == 400 and "TOKENHUB_MAX_BATCH_FILE_BYTES" in r.text, r.text
        r = _upload(c, line * 2)
        assert r.status_code == 200, r.text
        f = r.json()
        assert (f["object"], f["purpose"], f["bytes"]) == ("file", "batch", len(line) * 2)
        assert c.get(f"/v1/files/{f['id']}/content").content == line * 2
        r = c.post("/v1/files", json={"purpose": "batch"})
        assert r.status_code == 400 and "multipart" in r.text
        # a batch needs the engine: 503, and nothing half-created
        r = c.post("/v1/batches", json={"input_file_id": f["id"],
                                        "endpoint": "/v1/chat/completions"})
        assert r.status_code == 503 and "workflow engine" in r.text, r.text
        assert c.get("/v1/batches").json()["data"] == []
        assert c.delete(f"/v1/files/{f['id']}").json()["deleted"] is True
        assert c.get(f"/v1/files/{f['id']}").status_code == 404
