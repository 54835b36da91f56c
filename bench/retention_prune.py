"""Retention prune while serving: p99 of concurrent requests with and without a prune of a
large request log running in the same gateway process (SQLite, local path).

    python -m bench.retention_prune [--rows 1000000] [--seconds 20] [--concurrency 8]
        →  bench/results/retention-prune.md

The gateway runs as its own process (uvicorn factory) over the fake provider; the request
log is pre-filled with ``--rows`` rows 40 days old, so one ``POST /admin/v1/prune`` (the
same batched prune as the background task) deletes them all while the load runs. Phase 1:
load only; phase 2: load while the prune runs (at least ``--seconds``, until it ends).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from shared.store.migrations import migrate_sync
from tests.conftest import catalog_yaml
from tests.fake_provider import start_in_thread
from tests.support.server import free_port

ADMIN = "bench-admin-token-0123456789abcdef"
OUT = Path(__file__).parent / "results" / "retention-prune.md"


def fill(db: Path, rows: int) -> None:
    migrate_sync(f"sqlite+aiosqlite:///{db}")
    old = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%d %H:%M:%S.%f")
    con = sqlite3.connect(db)
    try:
        chunk = 50_000
        for start in range(0, rows, chunk):
            con.executemany(
                "INSERT INTO request_log (request_id, created_at, kind, status, executor, "
                "attempts, input_tokens, output_tokens, cost_usd, latency_ms, http_status, "
                "model, provider) VALUES (?, ?, 'chat', 'ok', 'local', '[]', 10, 20, 0.0001, "
                "5.0, 200, 'small', 'fake-openai')",
                ((f"old-{i}", old) for i in range(start, min(rows, start + chunk))))
            con.commit()
    finally:
        con.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def load(url: str, concurrency: int, until: asyncio.Event,
               min_seconds: float) -> tuple[list[float], int]:
    lat: list[float] = []
    errors = 0
    body = {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()

    async def one(c: httpx.AsyncClient) -> None:
        nonlocal errors
        while not until.is_set() or time.perf_counter() - started < min_seconds:
            t = time.perf_counter()
            r = await c.post("/v1/chat/completions", json=body)
            lat.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200

    async with httpx.AsyncClient(base_url=url, timeout=60, trust_env=False) as c:
        await asyncio.gather(*(one(c) for _ in range(concurrency)))
    return lat, errors


async def phases(url: str, seconds: float, concurrency: int) -> dict[str, object]:
    done = asyncio.Event()
    done.set()
    base, base_err = await load(url, concurrency, done, seconds)
    pruned = asyncio.Event()
    result: dict[str, object] = {}

    async def prune() -> None:
        t = time.perf_counter()
        async with httpx.AsyncClient(base_url=url, timeout=3600, trust_env=False) as c:
            r = await c.post("/admin/v1/prune", headers={"Authorization": f"Bearer {ADMIN}"})
        result["prune_s"] = time.perf_counter() - t
        result["deleted"] = r.json().get("deleted")
        pruned.set()

    task = asyncio.create_task(prune())
    during, during_err = await load(url, concurrency, pruned, seconds)
    await task
    return {"base": base, "base_err": base_err, "during": during, "during_err": during_err,
            **result}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    fake, fake_server = start_in_thread()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        t = time.perf_counter()
        fill(data / "tokenhub.db", args.rows)
        fill_s = time.perf_counter() - t
        cfg = data / "tokenhub.yaml"
        cfg.write_text(catalog_yaml(fake.url))
        port = free_port()
        env = {**os.environ, "TOKENHUB_DATA_DIR": str(data), "TOKENHUB_CONFIG": str(cfg),
               "TOKENHUB_TEMPORAL_ENABLED": "false", "TOKENHUB_REQUIRE_API_KEY": "false",
               "TOKENHUB_ADMIN_TOKEN": ADMIN, "TOKENHUB_PORT": str(port),
               "TOKENHUB_RATE_LIMIT_RPS": "1000000", "TOKENHUB_RATE_LIMIT_BURST": "1000000",
               "TOKENHUB_RETENTION_PRUNE_INTERVAL_S": "86400", "TOKENHUB_LOG_LEVEL": "WARNING",
               "FAKE_OPENAI_KEY": "sk-bench", "FAKE_ANTHROPIC_KEY": "sk-bench"}
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                                 "api.app:create_app", "--host", "127.0.0.1", "--port",
                                 str(port), "--log-level", "warning"], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/healthz", trust_env=False).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("gateway did not start")
                time.sleep(0.2)
            res = asyncio.run(phases(url, args.seconds, args.concurrency))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            fake_server.stop()
    base, during = res["base"], res["during"]
    assert isinstance(base, list) and isinstance(during, list)
    rows = [("load only", base, res["base_err"]), ("load + prune", during, res["during_err"])]
    lines = [
        "# Retention prune while serving (PROVISIONAL: shared, noisy 2-CPU box)", "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · `python -m bench.retention_prune --rows "
        f"{args.rows} --seconds {args.seconds:g} --concurrency {args.concurrency}` · SQLite, "
        f"local path, 0 ms fake provider, gateway in its own process", "",
        f"Request log filled with {args.rows:,} rows 40 days old ({fill_s:.1f} s); the prune "
        f"deleted {res.get('deleted')} in {float(str(res.get('prune_s', 0))):.1f} s "
        "(batches of 1,000, one short transaction each).", "",
        "| phase | requests | errors | p50 ms | p99 ms | mean ms |",
        "| --- | --- | --- | --- | --- | --- |"]
    for name, lat, err in rows:
        assert isinstance(lat, list)
        lines.append(f"| {name} | {len(lat)} | {err} | {pct(lat, 0.5):.2f} | "
                     f"{pct(lat, 0.99):.2f} | {statistics.fmean(lat):.2f} |")
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
