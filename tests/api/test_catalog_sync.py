"""Two gateway apps on one database (as `tokenhub serve --workers 2` runs them): an admin
change made through one is routed by the other within the catalog poll interval."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-sync-tests-0123456789"
POLL_S = 0.2


def admin(srv: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN}"})


def models(srv: ThreadedServer) -> list[str]:
    with admin(srv) as c:
        return [m["id"] for m in c.get("/admin/v1/models").json()["data"]]


def seen_within(srv: ThreadedServer, predicate: Any, timeout_s: float) -> float:
    started = time.monotonic()
    while not predicate(models(srv)):
        assert time.monotonic() - started < timeout_s, models(srv)
        time.sleep(0.02)
    return time.monotonic() - started


def test_second_gateway_sees_admin_changes_within_the_poll_interval(
        gateway_factory: Any, fake: FakeProvider, monkeypatch: Any) -> None:
    monkeypatch.setenv("SYNC_TEST_KEY", "sk-sync-test-key-0123456789")
    a: ThreadedServer = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S)
    b: ThreadedServer = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S)
    assert "synced" not in models(b)
    with admin(a) as c:
        r = c.post("/admin/v1/providers", json={"id": "sync-prov", "type": "openai",
                                                "base_url": fake.url,
                                                "api_key_env": "SYNC_TEST_KEY"})
        assert r.status_code == 201, r.text
        r = c.post("/admin/v1/models", json={"id": "synced", "provider": "sync-prov",
                                             "upstream_model": "synced-up", "weight": 10})
        assert r.status_code == 201, r.text
    # one poll interval, plus a reload and scheduling slack on a busy 2-CPU box
    assert seen_within(b, lambda ids: "synced" in ids, timeout_s=POLL_S + 1.5) < POLL_S + 1.5
    with httpx.Client(base_url=b.url, trust_env=False, timeout=30) as c:
        r = c.post("/v1/chat/completions", json={
            "model": "synced", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-tokenhub-model"] == "synced" and r.headers["x-tokenhub-attempts"] == "1"
    assert len(fake.calls("synced-up")) == 1
    with admin(a) as c:
        assert c.delete("/admin/v1/models/synced").status_code == 200
    seen_within(b, lambda ids: "synced" not in ids, timeout_s=POLL_S + 1.5)
