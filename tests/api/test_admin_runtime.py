"""Routing config, retention, prune, rewards and aliases through the admin API: validated
(400 naming the field, 409 on an alias/model collision), audited, and seen by a second
gateway app on the same database without a restart."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-runtime-tests-012345"
POLL_S = 0.2


def admin(srv: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN}"})


def eventually(check: Any, bound_s: float = 10.0) -> None:
    """Poll ``check`` until it is true; the bound only stops a hung test."""
    deadline = time.monotonic() + bound_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def chat(srv: ThreadedServer, model: str = "auto", **extra: Any) -> httpx.Response:
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        return c.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


def test_routing_config_change_is_applied_by_a_second_gateway(gateway_factory: Any) -> None:
    a = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S, default_mode="normal")
    b = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S, default_mode="normal")
    with admin(a) as c:
        cfg = c.get("/admin/v1/routing-config").json()
        assert cfg["defaults"]["mode"] == "normal"  # from the environment
        assert cfg["weights"]["cheap"] == {"cost": 0.7, "latency": 0.1, "failure": 0.1,
                                           "weight": 0.1}
        r = c.put("/admin/v1/routing-config", json={
            "defaults": {"mode": "high_confidence", "min_weight": 8},
            "weights": {"cheap": {"cost": 1}}})
        assert r.status_code == 200, r.text
        assert r.json()["weights"]["cheap"]["cost"] == 1
        assert r.json()["weights"]["cheap"]["latency"] == 0.1  # left as it was
        assert c.get("/admin/v1/audit").json()["data"][0]["action"] == "routing_config.update"

    def b_applies() -> bool:
        with admin(b) as c:
            sim = c.post("/admin/v1/routing/simulate", json={
                "request": {"messages": [{"role": "user", "content": "x"}]}}).json()
        return bool(sim["policy"]["mode"] == "high_confidence" and sim["policy"]["min_weight"] == 8)

    eventually(b_applies)
    r = chat(b)
    assert r.status_code == 200 and r.headers["x-tokenhub-model"] == "large"  # weight 9 ≥ 8


@pytest.mark.parametrize("body, field", [
    ({"bogus": 1}, "bogus"),
    ({"defaults": {"max_budget": 1}}, "defaults.max_budget"),
    ({"weights": {"normal": {"latency": -0.5}}}, "weights.normal.latency"),
    ({"weights": {"cheap": {"cost": 0, "latency": 0, "failure": 0, "weight": 0}}},
     "weights.cheap"),
    ({"defaults": {"max_latency_ms": 0}}, "defaults.max_latency_ms"),
])
def test_routing_config_bad_input_is_a_400_naming_the_field(
        gateway_factory: Any, body: dict[str, Any], field: str) -> None:
    srv = gateway_factory(admin_token=ADMIN)
    with admin(srv) as c:
        before = c.get("/admin/v1/routing-config").json()
        r = c.put("/admin/v1/routing-config", json=body)
        assert r.status_code == 400, r.text
        assert field in r.json()["error"]["message"]
        assert c.get("/admin/v1/routing-config").json() == before


def test_retention_settings_prune_and_rewards(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN)
    with admin(srv) as c:
        assert c.get("/admin/v1/retention").json()["request_log"] == {"days": 30.0, "rows": None}
        r = c.put("/admin/v1/retention", json={"request_log": {"days": 0.1}})
        assert r.status_code == 400 and "request_log.days" in r.json()["error"]["message"]
        assert "minimum" in r.json()["error"]["message"]
        r = c.put("/admin/v1/retention", json={"request_log": {"days": 1, "rows": 5000},
                                               "bogus": {}})
        assert r.status_code == 400 and "bogus" in r.json()["error"]["message"]
        r = c.put("/admin/v1/retention", json={"request_log": {"days": 1, "rows": 5000}})
        assert r.status_code == 200, r.text
        assert c.get("/admin/v1/retention").json()["request_log"] == {"days": 1.0, "rows": 5000}
        assert c.get("/admin/v1/retention").json()["audit"]["days"] == 365  # kept
        r = c.post("/admin/v1/prune")
        assert r.status_code == 200 and r.json()["deleted"] == {
            "request_log": 0, "rewards": 0, "audit": 0, "feedback": 0}
    for _ in range(3):
        assert chat(srv, "small").status_code == 200
    with admin(srv) as c:
        eventually(lambda: len(c.get("/admin/v1/rewards").json()["data"]) >= 3)
        page = c.get("/admin/v1/rewards", params={"limit": 2}).json()
        assert len(page["data"]) == 2 and page["next_cursor"] is not None
        assert page["data"][0]["model"] == "small" and page["data"][0]["success"] is True
        rest = c.get("/admin/v1/rewards", params={"limit": 2, "cursor": page["next_cursor"]})
        assert rest.json()["data"][0]["id"] < page["data"][1]["id"] + 1


def test_alias_crud_collisions_and_a_second_gateway(gateway_factory: Any,
                                                    fake: FakeProvider) -> None:
    a = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S)
    b = gateway_factory(admin_token=ADMIN, catalog_poll_s=POLL_S)
    with admin(a) as c:
        r = c.post("/admin/v1/aliases", json={"id": "split", "targets": {"small": 0, "claude": 1}})
        assert r.status_code == 201, r.text
        assert c.post("/admin/v1/aliases", json={"id": "split", "targets": {"small": 1}}
                      ).status_code == 409
        r = c.post("/admin/v1/aliases", json={"id": "medium", "targets": {"small": 1}})
        assert r.status_code == 409 and "collides with a model id" in r.text
        r = c.put("/admin/v1/aliases/zero", json={"targets": {"small": 0, "medium": 0}})
        assert r.status_code == 400 and "targets" in r.text
        r = c.put("/admin/v1/aliases/neg", json={"targets": {"small": -1, "medium": 2}})
        assert r.status_code == 400
        r = c.put("/admin/v1/aliases/ghost", json={"targets": {"nope": 1}})
        assert r.status_code == 400 and "unknown model" in r.text
        r = c.patch("/admin/v1/models/small", json={"aliases": ["large"]})
        assert r.status_code == 409  # declared on a model: the same catalog rule
        r = c.delete("/admin/v1/models/claude")
        assert r.status_code == 400 and "split" in r.text  # still a target
        assert c.delete("/admin/v1/aliases/ab").status_code == 400  # file-defined
        actions = [e["action"] for e in c.get("/admin/v1/audit").json()["data"]]
        assert "alias.create" in actions
    eventually(lambda: chat(b, "split").status_code == 200)
    r = chat(b, "split")
    assert r.headers["x-tokenhub-model"] == "claude"  # weight 0 for small
    with admin(a) as c:
        assert c.put("/admin/v1/aliases/split", json={"targets": {"small": 1}}).status_code == 200
        assert c.get("/admin/v1/aliases/split").json()["targets"] == {"small": 1}
    eventually(lambda: chat(b, "split").headers.get("x-tokenhub-model") == "small")
    with admin(a) as c:
        assert c.delete("/admin/v1/aliases/split").status_code == 200
        assert c.get("/admin/v1/aliases/split").status_code == 404
    eventually(lambda: chat(b, "split").status_code == 404)
