"""Issue 16: the exact response cache through the gateway, on the database (SQLite) and on
Redis: opt-in per request and per catalog model, hit without a provider call, $0 against
budgets and logged, scope per key or global, streamed replay, never errors or answers that
failed validation, admin clear, metrics, bad TTLs named."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from tests.api.logrows import _db_path, wait_rows
from tests.api.test_security_api import ADMIN, issue
from tests.conftest import catalog_yaml
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer, free_port

REDIS_URL = "redis://127.0.0.1:6379/0"


def body(text: str = "what is 2+2?", ttl: int | None = 60, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"request": {"messages": [{"role": "user", "content": text}],
                                       "model_hint": "small"}, **extra}
    if ttl is not None:
        out["cache"] = {"ttl_s": ttl}
    return out


@pytest.fixture(params=["database", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "database":
        return {}
    try:
        Redis.from_url(REDIS_URL).ping()
    except (RedisError, OSError):
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return {"cache_url": REDIS_URL}


@pytest.fixture
def srv(gateway_factory: Any, backend: dict[str, Any]) -> ThreadedServer:
    s: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                        rate_limit_rps=1000, rate_limit_burst=1000,
                                        cache_max_ttl_s=3600, **backend)
    with admin(s) as a:  # Redis is shared by the runs: start from an empty cache
        a.delete("/admin/v1/cache").raise_for_status()
    return s


def admin(srv: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN}"})


def client(srv: ThreadedServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def spend(srv: ThreadedServer, key_id: str) -> tuple[float, float]:
    con = sqlite3.connect(_db_path(srv))
    try:
        row = con.execute("SELECT spent_usd, reserved_usd FROM key_spend WHERE key_id = ?",
                          (key_id,)).fetchone()
    finally:
        con.close()
    return (float(row[0]), float(row[1])) if row else (0.0, 0.0)


def test_a_hit_answers_without_a_provider_call_costs_nothing_and_is_logged(
        srv: ThreadedServer, fake: FakeProvider) -> None:
    token, key_id = issue(srv, scopes=["chat"], monthly_budget_usd=1.0)
    text = f"unique question {uuid.uuid4().hex}"
    with client(srv, token) as c:
        first = c.post("/v1/chat", json=body(text))
        assert first.status_code == 200, first.text
        assert (first.headers["x-tokenhub-cache"], first.headers["x-tokenhub-executor"]) == \
            ("miss", "local")
        spent_after_miss = spend(srv, key_id)
        hits = [c.post("/v1/chat", json=body(text)) for _ in range(3)]
    assert fake.count() == 1  # one provider call for four answers
    for hit in hits:
        assert hit.status_code == 200
        assert (hit.headers["x-tokenhub-cache"], hit.headers["x-tokenhub-executor"]) == \
            ("hit", "cache")
        assert float(hit.headers["x-tokenhub-cost-usd"]) == 0
        got = hit.json()
        assert got["response"]["message"] == first.json()["response"]["message"]
        assert got["executor"] == "cache" and got["response"]["cost_usd"] == 0
    assert spend(srv, key_id) == spent_after_miss  # $0 against the budget, nothing held
    assert spent_after_miss[0] > 0
    [row] = wait_rows(srv, hits[0].json()["request_id"])
    assert (row["kind"], row["executor"], row["cost_usd"], row["model"]) == \
        ("cache", "cache", 0.0, "small")
    assert row["api_key_id"] == key_id
    assert wait_rows(srv, hits[0].json()["request_id"], table="rewards", timeout_s=0.3) == []
    with admin(srv) as a:
        metrics = a.get("/metrics").text
    assert 'tokenhub_cache_lookups_total{result="hit"} 3.0' in metrics
    assert 'tokenhub_cache_lookups_total{result="miss"} 1.0' in metrics


def test_the_key_covers_messages_parameters_and_model(srv: ThreadedServer,
                                                      fake: FakeProvider) -> None:
    token, _ = issue(srv, scopes=["chat"])
    text = f"q {uuid.uuid4().hex}"
    with client(srv, token) as c:
        c.post("/v1/chat", json=body(text))
        variants = [body(text + "!"), body(f"@@tokenhub budget=0.04\n{text}"),
                    {**body(text), "request": {**body(text)["request"],
                                               "parameters": {"temperature": 0.3}}},
                    {**body(text), "request": {**body(text)["request"], "model_hint": "medium"}}]
        caches = [c.post("/v1/chat", json=v).headers["x-tokenhub-cache"] for v in variants]
    # directives are stripped before the key: the same question with a directive is a hit
    assert caches == ["miss", "hit", "miss", "miss"]
    assert fake.count() == 4


def test_entries_are_per_key_unless_the_scope_is_global(
        gateway_factory: Any, fake: FakeProvider, backend: dict[str, Any]) -> None:
    for scope, expect in (("key", "miss"), ("global", "hit")):
        srv: ThreadedServer = gateway_factory(require_api_key=True, admin_token=ADMIN,
                                              cache_scope=scope, **backend)
        with admin(srv) as a:
            a.delete("/admin/v1/cache").raise_for_status()
        one, _ = issue(srv, scopes=["chat"])
        two, _ = issue(srv, scopes=["chat"])
        text = f"shared question {uuid.uuid4().hex}"
        with client(srv, one) as c:
            assert c.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == "miss"
        with client(srv, two) as c:
            assert c.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == expect


def test_compatible_route_header_and_streamed_replay(srv: ThreadedServer,
                                                     fake: FakeProvider) -> None:
    token, _ = issue(srv, scopes=["chat"])
    msg = [{"role": "user", "content": f"stream me {uuid.uuid4().hex}"}]
    ttl = {"X-TokenHub-Cache-TTL": "120"}
    with client(srv, token) as c:
        first = c.post("/v1/chat/completions", json={"model": "small", "messages": msg},
                       headers=ttl)
        assert first.headers["x-tokenhub-cache"] == "miss"
        again = c.post("/v1/chat/completions", json={"model": "small", "messages": msg},
                       headers=ttl)
        assert again.headers["x-tokenhub-cache"] == "hit"
        assert again.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]
        with c.stream("POST", "/v1/chat/completions", headers=ttl,
                      json={"model": "small", "messages": msg, "stream": True,
                            "stream_options": {"include_usage": True}}) as r:
            assert r.headers["x-tokenhub-cache"] == "hit"
            assert r.headers["x-tokenhub-executor"] == "cache"
            lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(ln[6:]) for ln in lines[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == first.json()["choices"][0]["message"]["content"]
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1]["usage"] == first.json()["usage"]
    assert fake.count() == 1


def test_catalog_ttl_caches_without_asking(gateway_factory: Any, fake: FakeProvider,
                                           tmp_path: Path) -> None:
    path = tmp_path / "cached.yaml"
    path.write_text(catalog_yaml(fake.url).replace(
        "weight: 3,", "weight: 3, cache_ttl_s: 300,"))
    srv: ThreadedServer = gateway_factory(config=path)
    msg = [{"role": "user", "content": f"catalog {uuid.uuid4().hex}"}]
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        caches = [c.post("/v1/chat/completions", json={"model": m, "messages": msg}
                         ).headers.get("x-tokenhub-cache") for m in ("small", "small", "medium")]
    assert caches == ["miss", "hit", None]  # medium has no catalog TTL: not cached


def test_errors_and_failed_validation_are_never_cached(srv: ThreadedServer,
                                                       fake: FakeProvider) -> None:
    token, _ = issue(srv, scopes=["chat"])
    text = f"fail {uuid.uuid4().hex}"
    failing = body(text, policy={"allow_escalation": False})
    fake.script("small-up", [{"status": 400}])
    with client(srv, token) as c:
        assert c.post("/v1/chat", json=failing).status_code == 502
        assert c.post("/v1/chat", json=failing).headers["x-tokenhub-cache"] == "miss"
        schema = {"type": "json", "schema": {"type": "object", "required": ["x"]}}
        fake.script("small-up", [{"content": "not json"}])
        bad = body(text + " json", output_format=schema)
        assert c.post("/v1/chat", json=bad).status_code == 422
        fake.script("small-up", [{"content": '{"x": 1}'}])
        ok = c.post("/v1/chat", json=bad)
        assert ok.status_code == 200 and ok.headers["x-tokenhub-cache"] == "miss"
        assert c.post("/v1/chat", json=bad).headers["x-tokenhub-cache"] == "hit"
    assert fake.count() == 4


def test_admin_clears_all_or_one_model_and_a_shorter_ttl_refuses_older_entries(
        srv: ThreadedServer, fake: FakeProvider) -> None:
    token, _ = issue(srv, scopes=["chat"])
    text = f"clear {uuid.uuid4().hex}"
    with client(srv, token) as c, admin(srv) as a:
        c.post("/v1/chat", json=body(text))
        assert a.delete("/admin/v1/cache", params={"model": "medium"}).json()["deleted"] == 0
        assert c.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == "hit"
        assert a.delete("/admin/v1/cache", params={"model": "small"}).json()["deleted"] == 1
        assert c.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == "miss"
        time.sleep(1.1)  # the entry is now older than one second
        assert c.post("/v1/chat", json=body(text, ttl=1)).headers["x-tokenhub-cache"] == "miss"
        audit = a.get("/admin/v1/audit").json()["data"]
    assert any(e["action"] == "cache.clear" for e in audit)


@pytest.mark.parametrize(("route", "kwargs", "named"), [
    ("/v1/chat", {"json": body(ttl=0)}, "cache.ttl_s"),
    ("/v1/chat", {"json": body(ttl=-5)}, "cache.ttl_s"),
    ("/v1/chat", {"json": body(ttl=3601)}, "cache.ttl_s"),
    ("/v1/chat/completions", {"headers": {"X-TokenHub-Cache-TTL": "0"}}, "X-TokenHub-Cache-TTL"),
    ("/v1/chat/completions", {"headers": {"X-TokenHub-Cache-TTL": "99999"}},
     "X-TokenHub-Cache-TTL"),
    ("/v1/chat/completions", {"headers": {"X-TokenHub-Cache-TTL": "soon"}},
     "X-TokenHub-Cache-TTL")])
def test_bad_ttls_are_a_400_naming_the_field(srv: ThreadedServer, fake: FakeProvider,
                                             route: str, kwargs: dict[str, Any],
                                             named: str) -> None:
    token, _ = issue(srv, scopes=["chat"])
    if route != "/v1/chat":
        kwargs = {**kwargs, "json": {"model": "small",
                                     "messages": [{"role": "user", "content": "x"}]}}
    with client(srv, token) as c:
        r = c.post(route, **kwargs)
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["message"]
    assert fake.count() == 0


def test_a_clear_reaches_every_process_memory(gateway_factory: Any, fake: FakeProvider,
                                              backend: dict[str, Any]) -> None:
    """Two gateways on one database: the second keeps a hit in memory; a clear through the
    first bumps the catalog version, and the second forgets within its poll."""
    one: ThreadedServer = gateway_factory(admin_token=ADMIN, catalog_poll_s=0.1, **backend)
    two: ThreadedServer = gateway_factory(admin_token=ADMIN, catalog_poll_s=0.1, **backend)
    text = f"two processes {uuid.uuid4().hex}"
    with httpx.Client(base_url=one.url, trust_env=False, timeout=30) as c1, \
            httpx.Client(base_url=two.url, trust_env=False, timeout=30) as c2:
        assert c1.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == "miss"
        assert c2.post("/v1/chat", json=body(text)).headers["x-tokenhub-cache"] == "hit"
        with admin(one) as a:
            assert a.delete("/admin/v1/cache").json()["deleted"] >= 1
        deadline = time.monotonic() + 10
        seen = "hit"
        while seen == "hit" and time.monotonic() < deadline:
            time.sleep(0.2)
            seen = c2.post("/v1/chat", json=body(text, ttl=None) | {"cache": {"ttl_s": 60}}
                           ).headers["x-tokenhub-cache"]
    assert seen == "miss"


def test_a_streamed_answer_is_kept_and_answers_the_next_request(
        srv: ThreadedServer, fake: FakeProvider) -> None:
    """A completed text stream is stored: a non-streamed repeat is a hit with the same
    text; a stream cut by the provider is not stored."""
    token, _ = issue(srv, scopes=["chat"])
    msg = [{"role": "user", "content": f"streamed first {uuid.uuid4().hex}"}]
    ttl = {"X-TokenHub-Cache-TTL": "120"}
    with client(srv, token) as c:
        with c.stream("POST", "/v1/chat/completions", headers=ttl,
                      json={"model": "small", "messages": msg, "stream": True}) as r:
            assert r.headers["x-tokenhub-cache"] == "miss"
            lines = [ln for ln in r.iter_lines() if ln.startswith("data: {")]
        text = "".join(json.loads(ln[6:])["choices"][0]["delta"].get("content", "")
                       for ln in lines)
        deadline = time.monotonic() + 5
        again = c.post("/v1/chat/completions", json={"model": "small", "messages": msg},
                       headers=ttl)
        while again.headers["x-tokenhub-cache"] != "hit" and time.monotonic() < deadline:
            time.sleep(0.1)  # stored when the stream's run finished (its own task)
            again = c.post("/v1/chat/completions", json={"model": "small", "messages": msg},
                           headers=ttl)
        assert again.headers["x-tokenhub-cache"] == "hit"
        assert again.json()["choices"][0]["message"]["content"] == text
        cut = [{"role": "user", "content": f"cut {uuid.uuid4().hex}"}]
        fake.script("small-up", [{"kind": "cut_stream"}])
        with c.stream("POST", "/v1/chat/completions", headers=ttl,
                      json={"model": "small", "messages": cut, "stream": True}) as r:
            list(r.iter_lines())
        time.sleep(0.3)
        assert c.post("/v1/chat/completions", json={"model": "small", "messages": cut},
                      headers=ttl).headers["x-tokenhub-cache"] == "miss"


def test_a_store_that_fails_never_fails_the_request(gateway_factory: Any,
                                                     fake: FakeProvider) -> None:
    """Redis unreachable (a closed port): the request runs, the lookup counts as error."""
    srv: ThreadedServer = gateway_factory(cache_url=f"redis://127.0.0.1:{free_port()}/0")
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        for _ in range(2):
            r = c.post("/v1/chat", json=body(f"no store {uuid.uuid4().hex}"))
            assert r.status_code == 200 and r.headers["x-tokenhub-cache"] == "miss"
        metrics = c.get("/metrics").text
    assert 'tokenhub_cache_lookups_total{result="error"} 2.0' in metrics
    assert 'tokenhub_cache_stores_total{outcome="error"} 2.0' in metrics
    assert fake.count() == 2
