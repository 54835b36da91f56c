"""CPU per upstream call of the HTTP client layers the adapters could use.

Against the raw-asyncio fake upstream (bench/upstream.py, another process) on 127.0.0.1,
16 concurrent callers, bounded count; CPU is this process's (time.process_time):

- httpx.AsyncClient over the httpx-aiohttp transport (the adapters' first version);
- that transport called directly with a prebuilt httpx.Request;
- aiohttp.ClientSession directly (what shared/providers/http.py uses now);
- TokenHub's HttpClient (shared/providers/http.py), the same plus classification.

    python -m bench.client_cost [--requests 4000]  →  bench/results/client-cost.md
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from bench.procs import free_port, wait_port
from shared.providers.http import build_client

BODY = orjson.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "hi"}]})
HEADERS = {"content-type": "application/json"}
RESULTS = Path(__file__).parent / "results"


async def _point(fn: Callable[[], Awaitable[None]], total: int,
                 concurrency: int) -> tuple[float, float]:
    for _ in range(200):  # warm the pool
        await fn()
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def caller() -> None:
        for _ in range(total // concurrency):
            await fn()

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / total * 1e6, total / wall


async def _run(url: str, total: int, concurrency: int) -> list[tuple[str, float, float]]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256,
                          keepalive_expiry=30)
    transport = AiohttpTransport(limits=limits, trust_env=False)
    hx = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(60, connect=10),
                           limits=limits, trust_env=False)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                    trust_env=False)
    ours = build_client(connect_timeout_s=10, read_timeout_s=60, max_connections=256,
                        model_share=0.5)  # the default: a semaphore per model
    hurl = httpx.URL(url)
    timeouts = {"connect": 10, "read": 60, "write": 60, "pool": 10}

    async def via_httpx() -> None:
        orjson.loads((await hx.post(url, content=BODY, headers=HEADERS)).content)

    async def via_transport() -> None:
        req = httpx.Request("POST", hurl, content=BODY, headers=HEADERS,
                            extensions={"timeout": timeouts})
        resp = await transport.handle_async_request(req)
        orjson.loads(await resp.aread())

    async def via_aiohttp() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as resp:
            orjson.loads(await resp.read())

    async def via_ours() -> None:
        orjson.loads((await ours.post(url, BODY, HEADERS, provider_id="bench",
                                      model="bench-model")).content)

    rows = []
    try:
        for name, fn in [("httpx.AsyncClient over httpx-aiohttp", via_httpx),
                         ("httpx-aiohttp transport, prebuilt request", via_transport),
                         ("aiohttp.ClientSession", via_aiohttp),
                         ("TokenHub HttpClient (aiohttp)", via_ours)]:
            best = min([await _point(fn, total, concurrency) for _ in range(3)])
            rows.append((name, *best))
    finally:
        await hx.aclose()
        await session.close()
        await ours.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "client-cost.md")
    args = parser.parse_args()
    port = free_port()
    up = subprocess.Popen([sys.executable, "-m", "bench.upstream", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc=up)
        rows = asyncio.run(_run(f"http://127.0.0.1:{port}/v1/chat/completions",
                                args.requests, args.concurrency))
    finally:
        up.terminate()
        up.wait(10)
    lines = [f"# HTTP client cost per upstream call ({datetime.now(UTC):%Y-%m-%d})", "",
             f"`python -m bench.client_cost`: {args.requests} POSTs per point, "
             f"{args.concurrency} concurrent callers, raw-asyncio fake upstream in another "
             "process on 127.0.0.1; CPU of the calling process only (best of 3).", "",
             "| client | CPU µs / call | calls/s |", "| --- | --- | --- |"]
    lines += [f"| {n} | {cpu:.0f} | {rps:,.0f} |" for n, cpu, rps in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
