"""Security through the gateway: admin auth, vault-backed providers, API keys, budgets,
rate limits, audit, and no secret in logs or stored rows."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-tests-0123456789"
VAULT_PW = "vault password for tests"
PROVIDER_KEY = "sk-provider-secret-abcdef123456"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def secure(gateway_factory: Any) -> ThreadedServer:
    srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                          rate_limit_rps=1000, rate_limit_burst=1000)
    return srv


def admin(srv: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN}"})


def issue(srv: ThreadedServer, **body: Any) -> tuple[str, str]:
    with admin(srv) as c:
        r = c.post("/admin/v1/apikeys", json={"name": "t", "scopes": ["chat"], **body})
    assert r.status_code == 201, r.text
    return r.json()["token"], r.json()["key"]["id"]


def chat(srv: ThreadedServer, token: str | None, path: str = "/v1/chat",
         body: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        return c.post(path, headers=headers, json=body or {"request": {"messages": MSG}})


def test_admin_routes_need_the_admin_token(secure: ThreadedServer) -> None:
    with httpx.Client(base_url=secure.url, trust_env=False) as c:
        for path in ("/admin/v1/providers", "/admin/v1/apikeys", "/admin/v1/audit"):
            assert c.get(path).status_code == 401
            r = c.get(path, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
    with admin(secure) as c:
        assert c.get("/admin/v1/providers").status_code == 200


def test_v1_needs_a_key_and_the_right_scope(secure: ThreadedServer) -> None:
    assert chat(secure, None).status_code == 401
    assert chat(secure, "thk_made-up-token-value").status_code == 401
    token, _ = issue(secure)
    assert chat(secure, token).status_code == 200
    r = chat(secure, token, "/v1/plan", {"request": {"messages": MSG}})
    assert r.status_code == 403 and "'plan'" in r.json()["error"]["message"]


def test_revoked_rotated_and_expired_keys(secure: ThreadedServer) -> None:
    token, key_id = issue(secure)
    with admin(secure) as c:
        new = c.post(f"/admin/v1/apikeys/{key_id}/rotate").json()["token"]
    assert chat(secure, token).status_code == 401  # the very next request
    assert chat(secure, new).status_code == 200
    with admin(secure) as c:
        assert c.delete(f"/admin/v1/apikeys/{key_id}").status_code == 200
    r = chat(secure, new)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    expired, _ = issue(secure, expires_at="2020-01-01T00:00:00Z")
    r = chat(secure, expired)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


async def test_budget_under_concurrency(secure: ThreadedServer, fake: FakeProvider) -> None:
    # the calls outlast the 20 reservations (DB writes of a few ms each): none settles before
    # all are decided, so only the estimates count
    fake.set_default(delay_ms=1000)
    # "small" costs ~0.0001025 per request estimate (1 token in + 512 assumed out)
    token, key_id = issue(secure, monthly_budget_usd=0.0001025 * 5)
    body = {"request": {"messages": MSG, "model_hint": "small"}}
    async with httpx.AsyncClient(base_url=secure.url, trust_env=False, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        results = await asyncio.gather(*(c.post("/v1/chat", json=body) for _ in range(20)))
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 403]
    assert len(ok) <= 5 and len(ok) + len(refused) == 20
    assert all(r.json()["error"]["type"] == "budget_exceeded" for r in refused)
    assert "monthly budget" in refused[0].json()["error"]["message"]
    db = str(secure.server.config.app.state.tokenhub.settings.effective_database_url
             ).split(":///", 1)[1]
    with sqlite3.connect(db) as con:
        spent, held = con.execute("SELECT spent_usd, reserved_usd FROM key_spend "
                                  "WHERE key_id = ?", (key_id,)).fetchone()
    assert 0 < spent <= 0.0001025 * 5 and abs(held) < 1e-12  # float dust


def test_rate_limit_burst_then_429_other_clients_unaffected(gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                          rate_limit_rps=1, rate_limit_burst=3,
                                          trusted_proxies=["127.0.0.1/32"])
    a, _ = issue(srv)
    b, _ = issue(srv)

    def send(token: str, ip: str) -> httpx.Response:
        with httpx.Client(base_url=srv.url, trust_env=False) as c:
            return c.post("/v1/chat", json={"request": {"messages": MSG}},
                          headers={"Authorization": f"Bearer {token}",
                                   "X-Forwarded-For": ip})

    codes = [send(a, "198.51.100.1").status_code for _ in range(3)]
    assert codes == [200, 200, 200]  # the burst
    r = send(a, "198.51.100.1")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["type"] == "rate_limited"
    assert send(b, "198.51.100.2").status_code == 200  # another client is unaffected
    r = send(a, "198.51.100.3")  # same key from another IP: the key's bucket holds
    assert r.status_code == 429 and "API key" in r.json()["error"]["message"]


def test_vault_backed_provider(secure: ThreadedServer, fake: FakeProvider,
                               tmp_path: Path) -> None:
    with admin(secure) as c:
        body = {"id": "vaulted", "type": "openai", "base_url": fake.url, "api_key": PROVIDER_KEY}
        r = c.post("/admin/v1/providers", json=body)
        assert r.status_code == 503 and r.json()["error"]["type"] == "vault_locked"
        assert c.post("/admin/v1/vault/unlock", json={"password": VAULT_PW}).status_code == 200
        assert c.post("/admin/v1/providers", json=body).status_code == 201
        r = c.post("/admin/v1/models", json={"id": "vm", "provider": "vaulted",
                                             "upstream_model": "vm-up", "weight": 10})
        assert r.status_code == 201, r.text
        listing = c.get("/admin/v1/providers").text
        assert PROVIDER_KEY not in listing and '"has_key":true' in listing
    token, _ = issue(secure)
    body2 = {"request": {"messages": MSG, "model_hint": "vm"}}
    r = chat(secure, token, body=body2)
    assert r.status_code == 200 and r.json()["negotiated_model"] == "vm"  # no restart
    assert fake.calls("vm-up")[0]["auth"] is True
    with admin(secure) as c:
        assert c.post("/admin/v1/vault/lock").status_code == 200
        ready = c.get("/readyz").json()
    assert ready["checks"]["vault"] == "locked"
    r = chat(secure, token, body=body2)
    assert r.status_code == 200 and r.json()["negotiated_model"] != "vm"  # ineligible
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))
    assert PROVIDER_KEY.encode() not in raw


def test_audit_log_records_admin_changes(secure: ThreadedServer) -> None:
    _, key_id = issue(secure)
    with admin(secure) as c:
        c.delete(f"/admin/v1/apikeys/{key_id}")
        c.post("/admin/v1/vault/unlock", json={"password": VAULT_PW})
        c.post("/admin/v1/vault/rotate", json={"old_password": "wrong-password",
                                               "new_password": "another password"})
        page = c.get("/admin/v1/audit", params={"limit": 2}).json()
        rest = c.get("/admin/v1/audit", params={"cursor": page["next_cursor"]}).json()
    actions = [(e["action"], e["outcome"]) for e in page["data"] + rest["data"]]
    assert actions == [("vault.rotate", "error:Unauthorized"), ("vault.unlock", "ok"),
                       ("apikey.revoke", "ok"), ("apikey.issue", "ok")]
    entry = page["data"][0]
    assert entry["actor"] == "admin" and entry["client_ip"] == "127.0.0.1"


def test_no_secret_in_logs_or_rows(gateway_factory: Any, fake: FakeProvider, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secure: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                             log_bodies=True)  # bodies stored, redacted
    token, _ = issue(secure)
    secrets = [ADMIN, VAULT_PW, PROVIDER_KEY, token, "sk-test-openai-secret"]
    with admin(secure) as c:
        c.post("/admin/v1/vault/unlock", json={"password": VAULT_PW})
        c.post("/admin/v1/providers", json={"id": "v2", "type": "openai", "base_url": fake.url,
                                            "api_key": PROVIDER_KEY})
        c.post("/admin/v1/vault/rotate", json={"old_password": VAULT_PW,
                                               "new_password": VAULT_PW + "!"})
        c.get("/admin/v1/apikeys")
    fake.script("*", [{"status": 500}] * 3)
    body = {"request": {"messages": [{"role": "user", "content": f"my key is {token}"}]}}
    for path in ("/v1/chat", "/v1/plan", "/v1/chat/completions", "/v1/models", "/readyz"):
        with httpx.Client(base_url=secure.url, trust_env=False,
                          headers={"Authorization": f"Bearer {token}",
                                   "X-Api-Key": PROVIDER_KEY}) as c:
            c.post(path, json=body) if path != "/v1/models" else c.get(path)
    logging.getLogger("tokenhub.test").warning("leak attempt %s %s", token, PROVIDER_KEY)
    secure.stop()  # flush the request log
    rows = b""
    for db in tmp_path.glob("*.db"):
        con = sqlite3.connect(db)
        for table in ("request_log", "audit_log", "api_keys", "vault_secrets", "rewards"):
            rows += repr(con.execute(f"SELECT * FROM {table}").fetchall()).encode()
        con.close()
    for secret in secrets:
        assert secret not in caplog.text, secret
        assert secret.encode() not in rows, secret
    assert b"my key is ***" in rows  # the body was stored, with the key masked


def test_cors_preflight_from_configured_origin(gateway_factory: Any) -> None:
    srv: ThreadedServer = gateway_factory(cors_origins=["https://app.example"])
    with httpx.Client(base_url=srv.url, trust_env=False) as c:
        ok = c.options("/v1/chat", headers={"Origin": "https://app.example",
                                            "Access-Control-Request-Method": "POST"})
        bad = c.options("/v1/chat", headers={"Origin": "https://evil.example",
                                             "Access-Control-Request-Method": "POST"})
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in bad.headers


def test_vault_autolock_drops_provider_keys(gateway_factory: Any, fake: FakeProvider) -> None:
    srv: ThreadedServer = gateway_factory(require_api_key=False, admin_token=ADMIN,
                                          vault_password=VAULT_PW)
    app: Any = srv.server.config.app
    state, sec = app.state.tokenhub.state, app.state.tokenhub.security
    with admin(srv) as c:
        assert c.get("/admin/v1/vault").json() == {"state": "unlocked"}  # env password
        c.post("/admin/v1/providers", json={"id": "v3", "type": "openai",
                                            "base_url": fake.url, "api_key": PROVIDER_KEY})
    assert state.vault_keys == {"v3": PROVIDER_KEY}
    sec.vault._autolock = 0.0  # idle time elapsed (clock-driven; see test_security.py)
    assert not sec.vault.is_unlocked
    with admin(srv) as c:
        assert c.get("/readyz").json()["checks"]["vault"] == "locked"
    for _ in range(60):  # the vault watch notices within a second
        if not state.vault_keys:
            break
        import time
        time.sleep(0.05)
    assert state.vault_keys == {}
    r = chat(srv, None, body={"request": {"messages": MSG, "model_hint": "small"}})
    assert r.status_code == 200 and fake.calls("small-up")


def test_rate_limits_are_shared_out_over_the_gateway_processes(gateway_factory: Any) -> None:
    """Buckets are per process: under `serve --workers 2` each process enforces half, so
    the two together never allow more than the configured rate and burst."""
    srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                          rate_limit_rps=0.01, rate_limit_burst=4,
                                          gateway_processes=2)
    token, _ = issue(srv)
    codes = [chat(srv, token).status_code for _ in range(3)]
    assert codes == [200, 200, 429]  # a burst of 4 / 2 processes
