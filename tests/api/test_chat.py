"""Native /v1/chat through each adapter type against the fake provider."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fake_provider import FakeProvider


def _chat(client: httpx.Client, content: str = "hello", **request: object) -> httpx.Response:
    body = {"request": {"messages": [{"role": "user", "content": content}], **request}}
    return client.post("/v1/chat", json=body)


@pytest.mark.parametrize(("hint", "upstream", "wire"), [
    ("small", "small-up", "openai"), ("medium", "medium-up", "openai"),
    ("claude", "claude-up", "anthropic")])
def test_chat_through_each_adapter(client: httpx.Client, fake: FakeProvider, hint: str,
                                   upstream: str, wire: str) -> None:
    r = _chat(client, "ping", model_hint=hint, parameters={"temperature": 0.3, "max_tokens": 50})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["negotiated_model"] == hint
    assert data["executor"] == "local"
    assert data["response"]["message"]["content"] == f"[{upstream}] ping"
    assert data["response"]["usage"]["prompt_tokens"] > 0
    assert data["response"]["cost_usd"] > 0
    assert r.headers["x-tokenhub-model"] == hint
    assert r.headers["x-tokenhub-executor"] == "local"
    assert r.headers["x-request-id"] == data["request_id"]
    (call,) = fake.calls(upstream)
    assert call["wire"] == wire
    assert call["params"]["temperature"] == 0.3
    assert call["params"]["max_tokens"] == 50


def test_request_id_is_echoed(client: httpx.Client) -> None:
    r = client.post("/v1/chat", headers={"X-Request-ID": "my-req-1"},
                    json={"request": {"messages": [{"role": "user", "content": "x"}]}})
    assert r.status_code == 200
    assert r.headers["x-request-id"] == "my-req-1"
    assert r.json()["request_id"] == "my-req-1"


def test_anthropic_adapter_lifts_system_prompt(client: httpx.Client, fake: FakeProvider) -> None:
    body = {"request": {"model_hint": "claude", "messages": [
        {"role": "system", "content": "be terse"}, {"role": "user", "content": "hi"}]}}
    assert client.post("/v1/chat", json=body).status_code == 200
    (call,) = fake.calls("claude-up")
    assert call["messages"][0] == {"role": "system", "content": "be terse"}  # from `system`
    assert all(m["role"] != "system" for m in call["messages"][1:])
    assert call["params"]["max_tokens"] > 0  # required by Anthropic


def test_vllm_round_robins_endpoints(client: httpx.Client, fake: FakeProvider) -> None:
    for _ in range(4):
        assert _chat(client, model_hint="medium").status_code == 200
    assert fake.count("medium-up") == 4


def test_native_stream(client: httpx.Client, fake: FakeProvider) -> None:
    body = {"request": {"model_hint": "claude", "stream": True,
                        "messages": [{"role": "user", "content": "stream me"}]}}
    with client.stream("POST", "/v1/chat", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert sse_content(text) == "[claude-up] stream me"
    assert text.rstrip().endswith("data: [DONE]")


def sse_content(text: str) -> str:
    """Concatenate the delta contents of OpenAI-style SSE chunks."""
    out = []
    for line in text.splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:]).get("choices", []):
                out.append(choice.get("delta", {}).get("content") or "")
    return "".join(out)


def test_native_usage_has_a_total(client: httpx.Client, fake: FakeProvider) -> None:
    r = client.post("/v1/chat", json={"request": {"messages": [{"role": "user",
                                                                "content": "count me"}]}})
    usage = r.json()["response"]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
