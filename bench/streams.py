"""Durable streams: TTFT, gaps between relayed events, long streams, resume (README
"Streaming"). ``python -m bench.streams [--quick]``; writes bench/results/streams.md.

Upstream: the scripted fake provider (tests/fake_provider) streaming 50 chunks 10 ms apart.
Targets: direct (the upstream itself), the local stream (Temporal disabled), the workflow
stream with the gateway's own task queue (default, live deltas in-process) and with the
subscribe-only relay (Workflow Streams alone). All in one process on one box: figures are
provisional, for comparing the paths with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from engine import attributes, devserver
from shared.config import Settings, load_catalog
from tests.conftest import catalog_yaml
from tests.fake_provider import start_in_thread
from tests.support.server import ThreadedServer, free_port

MSG = [{"role": "user", "content": "bench"}]
ANSWER = "x" * 400


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


async def one(c: httpx.AsyncClient, url: str, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> tuple[float, float, float, bool]:
    """(ttft ms, total ms, largest gap between events ms, ok)."""
    t0 = time.perf_counter()
    first, last, gap, ok = None, t0, 0.0, False
    async with c.stream("POST", url, json=body, headers=headers or {}) as r:
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            now = time.perf_counter()
            if first is None:
                first = now
            else:
                gap = max(gap, now - last)
            last = now
            ok = ok or line == "data: [DONE]"
    ok = ok and r.status_code == 200
    return ((first or last) - t0) * 1000, (last - t0) * 1000, gap * 1000, ok


async def series(url: str, path: str, model_field: dict[str, Any], n: int, conc: int
                 ) -> dict[str, float]:
    body = {"messages": MSG, "stream": True, **model_field}
    out: list[tuple[float, float, float, bool]] = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=120,
                                 limits=httpx.Limits(max_connections=conc + 4)) as c:
        await one(c, path, body)  # warm up
        sem = asyncio.Semaphore(conc)

        async def run() -> None:
            async with sem:
                out.append(await one(c, path, body, {"X-Request-ID": f"b-{uuid.uuid4().hex}"}))
        await asyncio.gather(*(run() for _ in range(n)))
    ttft = [x[0] for x in out]
    gaps = [x[2] for x in out]
    return {"ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99),
            "total_p50": pct([x[1] for x in out], 50), "gap_p99": pct(gaps, 99),
            "errors": float(sum(not x[3] for x in out))}


def settings(tmp: Path, cfg: Path, address: str | None, **kw: Any) -> Settings:
    values: dict[str, Any] = {"config": cfg, "data_dir": tmp, "env": "test",
                              "require_api_key": False, "temporal_enabled": address is not None,
                              "temporal_address": address or "127.0.0.1:1",
                              "temporal_task_queue": f"bq-{uuid.uuid4().hex[:8]}",
                              "temporal_embedded_worker": True, **kw}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def main(quick: bool) -> str:
    fake, fake_srv = start_in_thread()
    fake.set_default(content=ANSWER, chunks=50, gap_ms=10)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=devserver.binary(), port=free_port(),
        search_attributes=attributes.ALL_KEYS, data_converter=pydantic_data_converter,
        dev_server_extra_args=[a for k, v in devserver.DYNAMIC_CONFIG.items()
                               for a in ("--dynamic-config-value", f"{k}={v}")])
    address = str(env.client.service_client.config.target_host)
    tmp = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    cfg = tmp / "catalog.yaml"
    cfg.write_text(catalog_yaml(fake.url))
    servers: dict[str, ThreadedServer] = {}
    for name, addr, kw in (("local stream", None, {}),
                           ("workflow stream (own queue)", address, {}),
                           ("workflow stream (subscribe only)", address,
                            {"temporal_stream_relay": "subscribe"})):
        d = tmp / name.split()[0] / str(len(servers))
        d.mkdir(parents=True)
        s = settings(d, cfg, addr, **kw)
        servers[name] = ThreadedServer(create_app(s, load_catalog(s)))
        servers[name].start()
    n1, n16 = (10, 32) if quick else (40, 128)
    rows: list[tuple[str, str, dict[str, float]]] = []
    try:
        for c in (1, 16):
            n = n1 if c == 1 else n16
            rows.append(("direct", f"c={c}", await series(
                fake.base, "/v1/chat/completions", {"model": "small-up"}, n, c)))
            for name, srv in servers.items():
                rows.append((name, f"c={c}", await series(
                    srv.url, "/v1/chat/completions", {"model": "small"}, n, c)))
        # long streams: 200 chunks at 50 ms, 40 at once, on the default workflow path
        fake.set_default(content="y" * 800, chunks=200, gap_ms=50)
        long_n = 10 if quick else 40
        rows.append(("workflow stream (own queue), 200×50 ms", f"c={long_n}", await series(
            servers["workflow stream (own queue)"].url, "/v1/chat/completions",
            {"model": "small"}, long_n, long_n)))
        fake.set_default(content=ANSWER, chunks=50, gap_ms=10)
        resume = await resume_latency(servers["workflow stream (own queue)"].url,
                                      5 if quick else 20)
    finally:
        for srv in servers.values():
            srv.stop()
        await env.shutdown()
        fake_srv.stop()
    lines = ["# Durable streams (provisional: one shared, noisy 2-core box)", "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, `python -m bench.streams"
             f"{' --quick' if quick else ''}`; upstream: 50 chunks 10 ms apart "
             "(long: 200 chunks 50 ms apart)", "",
             "| target | conc | TTFT p50 ms | TTFT p99 ms | total p50 ms | max gap p99 ms "
             "| errors |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, conc, r in rows:
        lines.append(f"| {name} | {conc} | {r['ttft_p50']:.1f} | {r['ttft_p99']:.1f} | "
                     f"{r['total_p50']:.1f} | {r['gap_p99']:.1f} | {r['errors']:.0f} |")
    lines += ["", f"Resume (`GET /v1/runs/{{id}}/stream`, `Last-Event-ID` mid-answer, finished "
              f"run): first replayed event p50 {pct(resume, 50):.1f} ms, p99 "
              f"{pct(resume, 99):.1f} ms", ""]
    return "\n".join(lines)


async def resume_latency(url: str, n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as c:
        for _ in range(n):
            rid = f"r-{uuid.uuid4().hex}"
            body = {"model": "small", "messages": MSG, "stream": True}
            async with c.stream("POST", "/v1/chat/completions", json=body,
                                headers={"X-Request-ID": rid}) as r:
                async for _ in r.aiter_lines():
                    pass
            t0 = time.perf_counter()
            async with c.stream("GET", f"/v1/runs/{rid}/stream",
                                headers={"Last-Event-ID": "10"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        out.append((time.perf_counter() - t0) * 1000)
                        break
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(main(args.quick))
    out = Path(__file__).parent / "results" / "streams.md"
    out.write_text(report)
    print(report)
