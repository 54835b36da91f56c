"""What the processes of ``tokenhub serve --workers 2`` share (issue 13): one budget per key
(in the database: SQLite file or PostgreSQL), and /metrics summed over both processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.api.test_serve_workers import _wait_ready, _workers
from tests.conftest import catalog_yaml
from tests.fake_provider import FakeProvider
from tests.store_fixtures import db_url
from tests.support.server import free_port

__all__ = ["db_url"]
pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
ADMIN = "admin-token-for-tests-0123456789"
MSG = [{"role": "user", "content": "hi"}]
# "small": 1 token in (the gateway's estimate) + max_tokens 10 out = the reservation
ESTIMATE_USD = 1 * 0.0001 / 1000 + 10 * 0.0002 / 1000


def _serve(tmp_path: Path, fake: FakeProvider, port: int, **env: str) -> subprocess.Popen[bytes]:
    config = tmp_path / "tokenhub.yaml"
    config.write_text(catalog_yaml(fake.url))
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("TOKENHUB_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    full.update({"TOKENHUB_DATA_DIR": str(tmp_path), "TOKENHUB_ENV": "development",
                 "TOKENHUB_CONFIG": str(config), "TOKENHUB_REQUIRE_API_KEY": "true",
                 "TOKENHUB_ADMIN_TOKEN": ADMIN, "TOKENHUB_TEMPORAL_ENABLED": "false",
                 "TOKENHUB_LOG_LEVEL": "WARNING", "TOKENHUB_RATE_LIMIT_RPS": "100000",
                 "TOKENHUB_RATE_LIMIT_BURST": "100000", "FAKE_OPENAI_KEY": "sk-fake",
                 "FAKE_ANTHROPIC_KEY": "sk-fake", **env})
    return subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "2"],
        env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2])


@pytest.fixture
def two_workers(tmp_path: Path, fake: FakeProvider
                ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    temp = tmp_path / "tmp"  # where the supervisor makes its metrics directory
    temp.mkdir()
    proc = _serve(tmp_path, fake, port, TMPDIR=str(temp))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        assert len(_workers(proc.pid)) == 2
        assert len(list(temp.glob("tokenhub-metrics-*"))) == 1
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not list(temp.glob("tokenhub-metrics-*"))  # removed at exit


def _issue(url: str, budget: float) -> tuple[str, str]:
    with httpx.Client(base_url=url, trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        r = c.post("/admin/v1/apikeys", json={"name": "t", "scopes": ["chat"],
                                               "monthly_budget_usd": budget})
    assert r.status_code == 201, r.text
    return r.json()["token"], r.json()["key"]["id"]


async def _burst(url: str, token: str, n: int) -> list[httpx.Response]:
    """``n`` requests at once, each on its own connection (spread over both processes)."""
    body = {"request": {"messages": MSG, "model_hint": "small",
                        "parameters": {"max_tokens": 10}}}

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60,
                                     headers={"Authorization": f"Bearer {token}"}) as c:
            return await c.post("/v1/chat", json=body)

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def _spent(database_url: str, key_id: str) -> tuple[float, float]:
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.split(":///", 1)[1]) as con:
            row = con.execute("SELECT spent_usd, reserved_usd FROM key_spend WHERE key_id = ?",
                              (key_id,)).fetchone()
        return float(row[0]), float(row[1])
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        row = await conn.fetchrow("SELECT spent_usd, reserved_usd FROM key_spend "
                                  "WHERE key_id = $1", key_id)
    finally:
        await conn.close()
    return float(row[0]), float(row[1])


async def test_one_budget_across_two_processes(db_url: str, tmp_path: Path,
                                               fake: FakeProvider) -> None:
    """20 concurrent requests against a budget for 5, over two processes: at most 5 (all
    reservations are decided before any call returns), and spent within the budget."""
    fake.set_default(delay_ms=1500, content="x" * 40)
    port = free_port()
    proc = _serve(tmp_path, fake, port, TOKENHUB_DATABASE_URL=db_url)
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(_wait_ready, url, proc)
        token, key_id = await asyncio.to_thread(_issue, url, ESTIMATE_USD * 5 * (1 + 1e-9))
        results = await _burst(url, token, 20)
        ok = [r for r in results if r.status_code == 200]
        refused = [r for r in results if r.status_code == 403]
        assert 1 <= len(ok) <= 5 and len(ok) + len(refused) == 20, [r.text for r in results]
        assert all(r.json()["error"]["type"] == "budget_exceeded" for r in refused)
        spent, held = await _spent(db_url, key_id)
        one_request = 2 * 0.0001 / 1000 + 11 * 0.0002 / 1000  # the fake's own usage
        assert 0 < spent <= ESTIMATE_USD * 5 + one_request
        assert abs(held) < 1e-12
        # the key is exhausted for both processes now
        again = await _burst(url, token, 4)
        assert all(r.status_code == 403 for r in again)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 30)


def _requests_total(text: str, route: str) -> float:
    total = 0.0
    for m in re.finditer(r'^tokenhub_requests_total\{(.*)\} (\S+)$', text, re.M):
        if f'route="{route}"' in m.group(1):
            total += float(m.group(2))
    return total


def test_metrics_sum_both_processes(two_workers: tuple[str, subprocess.Popen[bytes]],
                                    fake: FakeProvider) -> None:
    url, _ = two_workers
    token, _ = _issue(url, 1.0)
    n = 24
    for _ in range(n):  # a new connection each: the kernel spreads them over both
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
            r = c.post("/v1/chat", json={"request": {"messages": MSG}},
                       headers={"Authorization": f"Bearer {token}", "connection": "close"})
            assert r.status_code == 200, r.text
    seen = set()
    for _ in range(8):  # whichever process answers /metrics reports the same sum
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
            text = c.get("/metrics", headers={"connection": "close"}).text
        route = re.search(r'tokenhub_requests_total\{route="([^"]*chat[^"]*)"', text)
        assert route is not None, text[:2000]
        seen.add(_requests_total(text, route.group(1)))
    assert seen == {float(n)}
