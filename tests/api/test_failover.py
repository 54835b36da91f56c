"""Failover by error class, end to end through the gateway and the fake provider."""

from __future__ import annotations

import httpx

from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

MSG = [{"role": "user", "content": "hi"}]


def _chat(client: httpx.Client, **request: object) -> httpx.Response:
    """Hint ``small`` (fake-openai, the smallest window) so it is tried first."""
    request.setdefault("model_hint", "small")
    return client.post("/v1/chat", json={"request": {"messages": MSG, **request}})


def test_429_fails_over_and_cools_the_provider_down(client: httpx.Client,
                                                    fake: FakeProvider) -> None:
    # small (fake-openai) is tried first; its 429 moves us to another provider
    fake.script("small-up", [{"status": 429, "retry_after": 30}])
    r = _chat(client)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["attempts"][0]["outcome"] == "rate_limited"
    assert data["attempts"][0]["retry_after"] == 30
    assert data["provider"] != "fake-openai"
    # while cooling down, fake-openai is skipped without being called
    r2 = _chat(client)
    assert r2.status_code == 200 and r2.json()["provider"] != "fake-openai"
    assert fake.count("small-up") == 1
    assert len(r2.json()["attempts"]) == 1


def test_5xx_is_retried_then_failed_over(client: httpx.Client, fake: FakeProvider) -> None:
    fake.script("small-up", [{"status": 503}] * 3)
    r = _chat(client)
    assert r.status_code == 200, r.text
    first, last = r.json()["attempts"][0], r.json()["attempts"][-1]
    assert first == {**first, "model": "small", "outcome": "transient", "tries": 3,
                     "status": 503}
    assert last["outcome"] == "ok" and last["model"] != "small"
    assert fake.count("small-up") == 3  # bounded retries on the same model


def test_transient_then_success_on_same_model(client: httpx.Client, fake: FakeProvider) -> None:
    fake.script("small-up", [{"status": 500}])
    r = _chat(client)
    assert r.json()["negotiated_model"] == "small"
    assert r.json()["attempts"] == [{**r.json()["attempts"][0], "outcome": "ok", "tries": 2}]


def test_context_overflow_escalates_to_a_larger_window(client: httpx.Client,
                                                       fake: FakeProvider) -> None:
    fake.script("small-up", [{"kind": "context_overflow"}])
    r = _chat(client)
    assert r.status_code == 200
    attempts = r.json()["attempts"]
    assert attempts[0]["outcome"] == "context_overflow" and attempts[0]["tries"] == 1
    assert r.json()["negotiated_model"] in {"medium", "claude", "large"}  # all > 4096


def test_everything_failing_is_502_listing_every_attempt(client: httpx.Client,
                                                         fake: FakeProvider,
                                                         gateway: ThreadedServer) -> None:
    fake.script("*", [{"status": 400}] * 50)
    r = _chat(client)
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["type"] == "all_providers_failed"
    models = [a["model"] for a in err["attempts"]]
    assert sorted(models) == ["claude", "large", "medium", "small"]
    assert all(a["outcome"] == "fatal" and a["status"] == 400 for a in err["attempts"])
    assert r.headers["x-tokenhub-executor"] == "local"
    row = wait_rows(gateway, r.headers["x-request-id"])[0]
    assert len(row["attempts"]) == 4 and row["status"] == "error"


def test_directive_applied_and_never_seen_upstream(client: httpx.Client,
                                                   fake: FakeProvider) -> None:
    msgs = [{"role": "system", "content": "sys\n@@tokenhub mode=high_confidence"},
            {"role": "user", "content": "@@tokenhub\nmin_weight=8\n@@end\nwhat is 2+2?"}]
    r = client.post("/v1/chat", json={"request": {"messages": msgs}})
    assert r.status_code == 200, r.text
    assert r.json()["negotiated_model"] == "large"  # the only model with weight >= 8
    (call,) = fake.calls()
    seen = str(call["messages"])
    assert "@@tokenhub" not in seen and "min_weight" not in seen and "@@end" not in seen
    assert call["messages"][-1]["content"] == "what is 2+2?"


def test_request_log_row_has_the_contract_fields(client: httpx.Client,
                                                 gateway: ThreadedServer) -> None:
    r = _chat(client)
    row = wait_rows(gateway, r.headers["x-request-id"])[0]
    assert row["model"] == "small" and row["provider"] == "fake-openai"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_usd"] > 0
    assert row["latency_ms"] > 0 and row["status"] == "ok" and row["executor"] == "local"
    assert row["error_class"] is None and row["request_body"] is None  # bodies off by default
    rewards = wait_rows(gateway, r.headers["x-request-id"], table="rewards")
    assert len(rewards) == 1 and 0.4 <= rewards[0]["reward"] <= 1


def test_bodies_logged_only_when_enabled(gateway_factory: object) -> None:
    srv: ThreadedServer = gateway_factory(log_bodies=True)  # type: ignore[operator]
    with httpx.Client(base_url=srv.url, trust_env=False) as c:
        r = _chat(c)
    row = wait_rows(srv, r.headers["x-request-id"])[0]
    assert row["request_body"] is not None and "hi" in row["request_body"]
