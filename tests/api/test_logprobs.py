"""logprobs pass through, in both wire formats, JSON and streamed."""

from __future__ import annotations

import json

import httpx

from tests.fake_provider import FakeProvider

MSG = [{"role": "user", "content": "two words"}]


def test_completions_pass_logprobs_through(client: httpx.Client, fake: FakeProvider) -> None:
    r = client.post("/v1/chat/completions", json={
        "model": "small", "messages": MSG, "logprobs": True, "top_logprobs": 2})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    tokens = choice["logprobs"]["content"]
    assert "".join(t["token"] for t in tokens) == choice["message"]["content"]
    assert all(len(t["top_logprobs"]) == 2 for t in tokens)
    assert fake.calls()[0]["params"]["logprobs"] is True
    assert fake.calls()[0]["params"]["top_logprobs"] == 2
    r = client.post("/v1/chat/completions", json={"model": "small", "messages": MSG})
    assert r.json()["choices"][0]["logprobs"] is None  # not asked, not given


def test_native_chat_has_a_logprobs_field(client: httpx.Client) -> None:
    r = client.post("/v1/chat", json={"request": {
        "messages": MSG, "model_hint": "medium", "parameters": {"logprobs": True}}})
    assert r.status_code == 200, r.text
    resp = r.json()["response"]
    assert "".join(t["token"] for t in resp["logprobs"]["content"]) == \
        resp["message"]["content"]


def test_streamed_chunks_carry_logprobs(client: httpx.Client) -> None:
    body = {"model": "small", "messages": MSG, "stream": True, "logprobs": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines()
                  if line.startswith("data: {")]
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events
                      if e["choices"])
    tokens = [t["token"] for e in events if e["choices"]
              for t in (e["choices"][0].get("logprobs") or {}).get("content", [])]
    assert content and "".join(tokens) == content
