"""Plain httpx vs httpx over aiohttp's pool (httpx-aiohttp), under concurrency.

Bounded: N requests per point against a local aiohttp server on 127.0.0.1.
    python -m bench.httpx_pool [--requests 3000]  →  bench/results/httpx-pool.md
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

BODY = b'{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'  # noqa: E501


async def _handler(_: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def _client(kind: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    if kind == "httpx-aiohttp":
        return httpx.AsyncClient(transport=AiohttpTransport(limits=limits, trust_env=False),
                                 limits=limits, trust_env=False)
    return httpx.AsyncClient(limits=limits, trust_env=False)


async def _point(url: str, kind: str, concurrency: int, total: int) -> dict[str, float]:
    lat: list[float] = []
    remaining = total
    async with _client(kind) as client:
        await client.post(url, content=b"{}")  # warm the pool

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                r = await client.post(url, content=b'{"model":"m"}')
                r.raise_for_status()
                lat.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"rps": len(lat) / wall, "p50": statistics.median(lat),
            "p99": lat[int(len(lat) * 0.99) - 1]}


async def main(total: int) -> str:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    rows = []
    try:
        for c in (1, 16, 64, 128):
            for kind in ("httpx", "httpx-aiohttp"):
                r = await _point(url, kind, c, total)
                rows.append(f"| {c} | {kind} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    finally:
        await runner.cleanup()
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    table = asyncio.run(main(args.requests))
    out = Path(__file__).parent / "results" / "httpx-pool.md"
    out.write_text(
        f"# httpx vs httpx-aiohttp ({datetime.now(UTC):%Y-%m-%d}, {args.requests} requests"
        " per point, client and server in one process on 127.0.0.1)\n\n"
        "| concurrency | client | req/s | p50 ms | p99 ms |\n| --- | --- | --- | --- | --- |\n"
        f"{table}\n")
    print(out.read_text())
