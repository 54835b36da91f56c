"""Bad input: always a 4xx with the error shape, never a 500 or a hang (issue list, one each)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

MSG = [{"role": "user", "content": "hi"}]


def _assert_error(r: httpx.Response, status: int, type_: str, needle: str = "") -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["type"] == type_
    assert err["request_id"] == r.headers["x-request-id"]
    assert needle.lower() in err["message"].lower()


def test_malformed_json(client: httpx.Client) -> None:
    r = client.post("/v1/chat", content=b'{"request": {"messages": [', headers={
        "content-type": "application/json"})
    _assert_error(r, 400, "invalid_request", "malformed JSON")


def test_empty_messages(client: httpx.Client) -> None:
    _assert_error(client.post("/v1/chat", json={"request": {"messages": []}}), 400,
                  "invalid_request", "messages")


def test_missing_messages(client: httpx.Client) -> None:
    _assert_error(client.post("/v1/chat", json={"request": {}}), 400, "invalid_request",
                  "messages")
    _assert_error(client.post("/v1/chat/completions", json={"model": "auto"}), 400,
                  "invalid_request", "messages")


@pytest.mark.parametrize("body", [
    {"request": {"messages": "hello"}},
    {"request": {"messages": [{"role": "user", "content": 5}]}},
    {"request": {"messages": [{"role": "wizard", "content": "x"}]}},
    {"request": {"messages": MSG, "parameters": {"temperature": "hot"}}},
    {"request": {"messages": MSG}, "output_format": {"type": "yaml"}},
])
def test_wrong_types(client: httpx.Client, body: dict[str, Any]) -> None:
    _assert_error(client.post("/v1/chat", json=body), 400, "invalid_request")


def test_unknown_model_id(client: httpx.Client) -> None:
    _assert_error(client.post("/v1/chat", json={"request": {"messages": MSG,
                                                            "model_hint": "nope"}}),
                  404, "not_found", "unknown model 'nope'")


@pytest.mark.parametrize("budget", [-1, "cheap"])
def test_negative_or_non_numeric_budget(client: httpx.Client, budget: Any) -> None:
    r = client.post("/v1/chat", json={"request": {"messages": MSG},
                                      "policy": {"max_budget_usd": budget}})
    _assert_error(r, 400, "invalid_request", "max_budget_usd")


def test_body_over_the_limit(gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(max_body_bytes=2048)
    big = {"request": {"messages": [{"role": "user", "content": "x" * 4096}]}}
    with httpx.Client(base_url=srv.url, trust_env=False) as c:
        _assert_error(c.post("/v1/chat", json=big), 413, "payload_too_large", "2048")

        def chunks() -> Any:  # no Content-Length: the streamed body is counted
            yield b'{"request": {"messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 1024
            yield b'"}]}}'
        r = c.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"})
        _assert_error(r, 413, "payload_too_large")


def test_unknown_route_and_method(client: httpx.Client) -> None:
    _assert_error(client.get("/v1/nothing"), 404, "not_found")
    _assert_error(client.get("/v1/chat"), 405, "method_not_allowed")


def test_garbage_from_provider_is_502_and_logged(client: httpx.Client, fake: FakeProvider,
                                                 gateway: ThreadedServer) -> None:
    fake.script("*", [{"kind": "malformed"}] * 20)
    r = client.post("/v1/chat", json={"request": {"messages": MSG, "model_hint": "small"}})
    _assert_error(r, 502, "all_providers_failed")
    attempts = r.json()["error"]["attempts"]
    assert attempts and all(a["outcome"] == "transient" for a in attempts)
    assert "malformed" in attempts[0]["message"]
    rows = wait_rows(gateway, r.headers["x-request-id"])
    assert rows[0]["status"] == "error" and rows[0]["http_status"] == 502


def test_invalid_directive_names_the_key(client: httpx.Client, fake: FakeProvider) -> None:
    msg = [{"role": "user", "content": "@@tokenhub budget=lots\nhello"}]
    _assert_error(client.post("/v1/chat", json={"request": {"messages": msg}}), 400,
                  "invalid_directive", "budget")
    assert fake.count() == 0


def test_openapi_documents_the_bodies_the_routes_parse_themselves(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for path, name in [("/v1/chat", "ChatBody"), ("/v1/chat/completions", "CompletionsBody")]:
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{name}"}
        assert schemas[name]["title"] == name and schemas[name]["required"]
    refs = {r.rsplit("/", 1)[1] for r in _refs(doc)}
    assert refs <= set(schemas), refs - set(schemas)  # every reference resolves


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


async def test_a_client_disconnecting_mid_body_is_a_400_not_a_500() -> None:
    from starlette.requests import Request

    from api.deps import json_body
    from shared.contracts import ChatBody
    from shared.errors import BadRequest

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(BadRequest) as exc:
        await json_body(request, ChatBody)
    assert exc.value.status_code == 400 and "disconnected" in exc.value.message


def test_a_prompt_too_long_for_every_model_is_a_400_not_a_503(client: httpx.Client,
                                                               fake: FakeProvider) -> None:
    """No retry can succeed, so SDKs must not retry it: OpenAI's context_length_exceeded."""
    huge = "word " * 170_000  # ~212k estimated tokens; the largest window is 200k
    for path, body in (
            ("/v1/chat/completions", {"model": "auto",
                                      "messages": [{"role": "user", "content": huge}]}),
            ("/v1/chat", {"request": {"messages": [{"role": "user", "content": huge}]}}),
            ("/v1/plan", {"request": {"messages": [{"role": "user", "content": huge}]}})):
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, r.text)
        err = r.json()["error"]
        assert err["type"] == "context_length_exceeded" and "200000" in err["message"]
    # a budget too small for any model stays a 503: another request could succeed
    r = client.post("/v1/chat", json={"request": {"messages": [{"role": "user", "content": "hi"}]},
                                      "policy": {"max_budget_usd": 0}})
    assert r.status_code == 503 and r.json()["error"]["type"] == "no_eligible_model"
    assert fake.calls() == []
