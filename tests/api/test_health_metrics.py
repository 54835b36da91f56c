"""Probes, Prometheus metrics, and routing state that survives a restart."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer


def test_probes(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_metrics_count_requests_tokens_cost_and_errors(client: httpx.Client,
                                                       fake: FakeProvider) -> None:
    body = {"request": {"messages": [{"role": "user", "content": "hi"}], "model_hint": "small"}}
    assert client.post("/v1/chat", json=body).status_code == 200
    fake.script("small-up", [{"status": 429, "retry_after": 1}])
    assert client.post("/v1/chat", json=body).status_code == 200
    text = client.get("/metrics").text
    assert 'tokenhub_requests_total{route="/v1/chat",status="200"} 2.0' in text
    assert 'tokenhub_request_latency_seconds_count{route="/v1/chat"} 2.0' in text
    assert 'tokenhub_tokens_total{direction="input",model="small"}' in text
    assert 'tokenhub_cost_usd_total{model="small"}' in text
    assert ('tokenhub_provider_errors_total{error_class="rate_limited",provider="fake-openai"}'
            ' 1.0') in text
    assert 'tokenhub_executor_total{executor="local",kind="chat"} 2.0' in text
    assert "sk-test-openai-secret" not in text


def test_stats_are_seeded_from_the_request_log_on_restart(gateway_factory: Any,
                                                          fake: FakeProvider) -> None:
    first: ThreadedServer = gateway_factory()
    with httpx.Client(base_url=first.url, trust_env=False) as c:
        for _ in range(3):
            c.post("/v1/chat", json={"request": {"messages": [{"role": "user", "content": "x"}],
                                                 "model_hint": "medium"}})
    first.stop()  # drains the batched request log
    second: ThreadedServer = gateway_factory()
    state = second.server.config.app.state.tokenhub.state  # type: ignore[attr-defined]
    for _ in range(50):
        if "medium" in state.stats.snapshot():
            break
        import time
        time.sleep(0.05)
    stats = state.stats.snapshot()["medium"]
    assert stats.samples == 3 and stats.failure_rate == 0 and stats.latency_ms > 0
