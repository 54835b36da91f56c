"""What payload encryption costs on the workflow path (README "Privacy of runs").

One tuned dev server, the fake provider (0 ms), a separate `tokenhub worker` and a gateway,
codec off and on in alternating rounds (the box is shared: interleaving keeps drift out of
the difference); c=1 (sequential) and c=16 `POST /v1/chat`; CPU per run of the gateway +
worker processes (/proc). Also the codec alone on a chat run's real payloads, in-process.
    python -m bench.codec_cost [--requests 300] [--rounds 2]  →  bench/results/codec-cost.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.common.v1 import Payload

from api.app import create_app
from engine import devserver
from engine.codec import EncryptionCodec
from shared.config import Settings, load_catalog
from shared.security.payload_keys import new_key_entry, parse_payload_keys
from tests.conftest import catalog_yaml
from tests.fake_provider import start_in_thread
from tests.integration.procs import kill, start_worker, wait_port
from tests.support.server import ThreadedServer, free_port

HZ = os.sysconf("SC_CLK_TCK")
BODY = {"request": {"messages": [{"role": "user", "content": "hello " * 60}],
                    "model_hint": "small"}}


def _ticks(pid: int) -> int:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


async def _load(url: str, n: int, c: int) -> list[float]:
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60,
                                 limits=httpx.Limits(max_connections=c)) as client:
        async def one() -> None:
            t0 = time.perf_counter()
            r = await client.post("/v1/chat", json=BODY)
            lat.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            assert r.headers["x-tokenhub-executor"] == "temporal", r.headers

        for _ in range(20):
            await one()
        lat.clear()
        sem = asyncio.Semaphore(c)

        async def bounded() -> None:
            async with sem:
                await one()

        await asyncio.gather(*(bounded() for _ in range(n)))
    return sorted(lat)


def _point(url: str, worker_pid: int, n: int, c: int) -> dict[str, float]:
    me = os.getpid()
    cpu0 = _ticks(me) + _ticks(worker_pid)
    lat = asyncio.run(_load(url, n, c))
    cpu = (_ticks(me) + _ticks(worker_pid) - cpu0) / HZ
    return {"p50": statistics.median(lat), "p99": lat[max(0, int(len(lat) * 0.99) - 1)],
            "cpu_ms": cpu / (n + 20) * 1000}


def codec_alone(runs: int = 2000) -> float:
    """µs of encode + decode over the payloads of one chat run (sizes from a real run:
    input ~2 KB, memo/summary/details/search-free fields, activity input/result, result)."""
    codec = EncryptionCodec(parse_payload_keys(new_key_entry("b"), source="bench"))
    sizes = [2400, 60, 40, 300, 120, 40, 30, 2600, 900, 1100, 1500]
    payloads = [Payload(metadata={"encoding": b"json/plain"}, data=os.urandom(s))
                for s in sizes]

    async def go() -> float:
        t0 = time.perf_counter()
        for _ in range(runs):
            await codec.decode(await codec.encode(payloads))
        return (time.perf_counter() - t0) / runs * 1e6

    return asyncio.run(go())


def main(n: int, rounds: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="th-codec-"))
    fake, fake_srv = start_in_thread()
    os.environ["FAKE_OPENAI_KEY"] = os.environ["FAKE_ANTHROPIC_KEY"] = "bench"
    config = work / "catalog.yaml"
    config.write_text(catalog_yaml(fake.url))
    log = work / "procs.log"
    port = free_port()
    server = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=None)
    import subprocess

    with log.open("ab") as out:
        dev = subprocess.Popen(server, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    wait_port(port)
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    key = new_key_entry("bench")
    raw: list[str] = []
    try:
        for r in range(rounds):
            for codec in ("off", "on"):
                queue = f"codec-{codec}-{r}-{port}"
                extra: dict[str, Any] = {"temporal_payload_keys": key} if codec == "on" else {}
                settings = Settings(_env_file=None, config=config, data_dir=work / queue,
                                    temporal_address=f"127.0.0.1:{port}", env="test",
                                    temporal_task_queue=queue, require_api_key=False,
                                    admin_token="bench-admin-token-0123456789",
                                    rate_limit_rps=1e6, rate_limit_burst=1e6, **extra)
                worker = start_worker(
                    config=config, data_dir=work / queue, address=f"127.0.0.1:{port}",
                    queue=queue, log=log, extra_env={"TOKENHUB_TEMPORAL_PAYLOAD_KEYS": key}
                    if codec == "on" else None)
                gw = ThreadedServer(create_app(settings, load_catalog(settings)))
                gw.start()
                try:
                    time.sleep(2)
                    for c in (1, 16):
                        point = _point(gw.url, worker.pid, n if c == 1 else n * 2, c)
                        results.setdefault((codec, c), []).append(point)
                        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
                        raw.append(f"- round {r}, codec {codec}, c={c}: p50 {point['p50']:.1f}"
                                   f" ms, p99 {point['p99']:.1f} ms, CPU {point['cpu_ms']:.2f}"
                                   f" ms/run (load {load})")
                        print(raw[-1])
                finally:
                    gw.stop()
                    kill(worker)
    finally:
        kill(dev)
        fake_srv.stop()
    rows = []
    for c in (1, 16):
        med = {k: {m: statistics.median(p[m] for p in results[(k, c)])
                   for m in ("p50", "p99", "cpu_ms")} for k in ("off", "on")}
        for k in ("off", "on"):
            rows.append(f"| c={c}, codec {k} | {med[k]['p50']:.1f} | {med[k]['p99']:.1f} | "
                        f"{med[k]['cpu_ms']:.2f} |")
        rows.append(f"| c={c}, **added by the codec** | {med['on']['p50'] - med['off']['p50']:+.1f}"
                    f" | {med['on']['p99'] - med['off']['p99']:+.1f} | "
                    f"{med['on']['cpu_ms'] - med['off']['cpu_ms']:+.2f} |")
    alone = codec_alone()
    rows.append(f"| the codec alone: encode + decode of one chat run's payloads, in-process "
                f"| {alone / 1000:.3f} | — | {alone / 1000:.3f} |")
    return "\n".join(rows) + "\n\nEach point:\n\n" + "\n".join(raw)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    load = open("/proc/loadavg").read().split()[:3]
    table = main(args.requests, args.rounds)
    out = Path(__file__).parent / "results" / "codec-cost.md"
    out.write_text(
        f"# Payload codec cost on the workflow path ({datetime.now(UTC):%Y-%m-%d})\n\n"
        f"`POST /v1/chat` (~360-character prompt), fake provider 0 ms, tuned dev server, "
        f"separate `tokenhub worker`, gateway (and the load client) in the benchmark's process; "
        f"{args.rounds} "
        f"alternating rounds off/on, medians of the rounds; c=1: {args.requests} requests, "
        f"c=16: {args.requests * 2}. CPU = gateway (+ load client) + worker process time per "
        f"run (the dev server's is the same either way: it stores bytes). Load average at start: "
        f"{' '.join(load)} (2-core box shared with other agents).\n\n"
        "| point | p50 ms | p99 ms | CPU ms per run |\n| --- | --- | --- | --- |\n"
        f"{table}\n")
    print(out.read_text())
