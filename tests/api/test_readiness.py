"""/readyz tells the truth, and a dead Temporal is probed off the request path."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.fake_provider import FakeProvider
from tests.support.server import free_port

BODY = {"request": {"messages": [{"role": "user", "content": "hi"}]}}


def _ready(gateway_factory: Any, **overrides: Any) -> httpx.Response:
    srv = gateway_factory(**overrides)
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        return c.get("/readyz")


def test_no_provider_is_not_ready(gateway_factory: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("providers: []\nmodels: []\n")
    r = _ready(gateway_factory, config=empty, simulated_provider=False)
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["providers"].startswith("none eligible")


def test_only_a_keyless_vault_provider_is_not_ready(gateway_factory: Any, tmp_path: Path,
                                                   fake: FakeProvider) -> None:
    cfg = tmp_path / "vault.yaml"
    cfg.write_text(f"""
providers:
  - {{id: vaulted, type: openai, base_url: "{fake.url}", uses_vault: true}}
models:
  - {{id: m, provider: vaulted, upstream_model: m-up}}
""")
    r = _ready(gateway_factory, config=cfg, simulated_provider=False)
    assert r.status_code == 503, r.text
    assert r.json()["checks"]["providers"] == "none eligible of 1 configured"
    assert r.json()["checks"]["vault"] != "unlocked"


def test_ready_with_an_eligible_provider_and_temporal_off(gateway_factory: Any) -> None:
    r = _ready(gateway_factory)
    assert r.status_code == 200
    checks = r.json()["checks"]
    assert checks["providers"] == "3 eligible of 3 configured"
    assert checks["temporal"] == "disabled"


def test_temporal_down_is_still_ready_and_never_probed_by_a_request(
        gateway_factory: Any, fake: FakeProvider) -> None:
    srv = gateway_factory(temporal_enabled=True, temporal_address=f"127.0.0.1:{free_port()}",
                          temporal_circuit_failures=1, temporal_circuit_cooldown_s=0.05,
                          temporal_start_timeout_s=1.0, temporal_connect_timeout_s=1.0)
    dispatcher = srv.server.config.app.state.tokenhub.dispatcher
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        executors = []
        for _ in range(10):  # spread over several cool-downs
            r = c.post("/v1/chat", json=BODY)
            assert r.status_code == 200, r.text
            executors.append(r.headers["x-tokenhub-executor"])
            time.sleep(0.06)
        deadline = time.monotonic() + 10
        while dispatcher.prober.probes < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = c.get("/readyz")
        metrics = c.get("/metrics").text
    assert executors == ["local"] * 10
    # only the first request found Temporal unreachable; after that the circuit was open
    # and the background prober alone tried it
    assert dispatcher.unavailable == 1
    assert dispatcher.prober.probes >= 3
    assert 'tokenhub_temporal_probes_total{outcome="failed"}' in metrics
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["temporal"] == "down, local fallback"
