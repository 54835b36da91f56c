"""Durable streams: TTFT, cadence, long streams and their CPU, the batch interval's cost,
resume (README "Streaming"). ``python -m bench --streams`` (or ``python -m bench.streams
[--quick]``); writes bench/results/streams.md (+ .json).

Every piece is its own process, as deployed: the raw asyncio upstream (``bench.upstream``,
streaming mode), a Temporal dev server, one ``api worker`` on the shared queue, and three
gateways (``api serve``): Temporal off (the local stream), the default workflow stream
(the gateway's own task queue, live deltas handed over in-process once durable) and the
subscribe-only relay (Workflow Streams alone). The client is this process (httpx).

Points: TTFT and total time at c=1 and c=16 (upstream 50 chunks 10 ms apart) for direct,
local, own queue and subscribe only; the largest gap between relayed events per stream
(p99 over streams); ``--long`` workflow streams at once (200 chunks 50 ms apart, ~10 s)
with CPU per stream by process (gateway, worker, dev server); the same at each batch
interval of ``--batches``; resume (first replayed event after ``Last-Event-ID``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.cpu import HZ, Meter
from bench.procs import LOOPBACK, ROOT, WORK, Group, free_port, wait_http, wait_port
from bench.targets import _temporal_cmd

RESULTS = Path(__file__).parent / "results"
MSG = [{"role": "user", "content": "bench"}]
FAST, LONG = "stream-50x10", "stream-200x50"  # upstream shapes: chunks x gap ms
TARGETS = ("direct", "local stream", "workflow stream (own queue)",
           "workflow stream (subscribe only)")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process so far."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / HZ


@dataclass
class Stream:
    ttft_ms: float
    total_ms: float
    max_gap_ms: float  # between any two events
    ok: bool
    answer_gap_ms: float = 0.0  # between two events of the answer (up to its finish chunk)
    end_ms: float = 0.0  # from the finish chunk to the usage chunk (the end event)


async def one(c: httpx.AsyncClient, url: str, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> Stream:
    t0 = time.perf_counter()
    times: list[float] = []
    ok = False
    try:
        async with c.stream("POST", url, json=body, headers=headers or {}) as r:
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                times.append(time.perf_counter())
                ok = ok or line == "data: [DONE]"
        ok = ok and r.status_code == 200
    except httpx.HTTPError:
        ok = False
    if not times:
        return Stream(0.0, 0.0, 0.0, False)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # the last three events are the finish chunk, the usage chunk and [DONE]
    answer = gaps[:-2] if len(gaps) > 2 else gaps
    end = gaps[-2] if len(gaps) >= 2 else 0.0
    return Stream((times[0] - t0) * 1000, (times[-1] - t0) * 1000,
                  max(gaps, default=0.0) * 1000, ok, max(answer, default=0.0) * 1000,
                  end * 1000)


async def series(url: str, model: str, n: int, conc: int, *, warmup: bool = True
                 ) -> dict[str, float]:
    """``n`` streams, ``conc`` at a time (one warm-up first)."""
    body = {"model": model, "messages": MSG, "stream": True,
            "stream_options": {"include_usage": True}}
    out: list[Stream] = []
    async with httpx.AsyncClient(trust_env=False, timeout=120,
                                 limits=httpx.Limits(max_connections=conc + 4)) as c:
        if warmup:
            await one(c, url, body)
        sem = asyncio.Semaphore(conc)

        async def run() -> None:
            async with sem:
                out.append(await one(c, url, body, {"X-Request-ID": f"b-{uuid.uuid4().hex}"}))
        meter, load0 = Meter(), loadavg()
        await asyncio.gather(*(run() for _ in range(n)))
        other = meter.other_cpu_pct()
    ttft = [x.ttft_ms for x in out]
    gaps = [x.max_gap_ms for x in out]
    return {"n": n, "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99),
            "total_p50": pct([x.total_ms for x in out], 50),
            "total_p99": pct([x.total_ms for x in out], 99),
            "gap_p50": pct(gaps, 50), "gap_p99": pct(gaps, 99),
            "answer_gap_p99": pct([x.answer_gap_ms for x in out], 99),
            "end_p50": pct([x.end_ms for x in out], 50),
            "end_p99": pct([x.end_ms for x in out], 99),
            "errors": sum(not x.ok for x in out), "load": max(load0, loadavg()),
            "other_cpu_pct": other}


class Stack:
    """Upstream, dev server, shared worker and the gateways, each its own process."""

    def __init__(self) -> None:
        self.group = Group("streams")
        self.dir = WORK / "streams"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pids: dict[str, int] = {}
        self.urls: dict[str, str] = {}
        self._gateways: dict[str, Any] = {}
        self._worker: Any = None

    def start(self) -> None:
        up = free_port()
        proc = self.group.start([sys.executable, "-m", "bench.upstream", "--port", str(up)])
        wait_port(up, proc=proc)
        self.upstream = f"http://{LOOPBACK}:{up}/v1"
        self.urls["direct"] = f"{self.upstream}/chat/completions"
        tport = free_port()
        proc = self.group.start(_temporal_cmd(tport))
        wait_port(tport, proc=proc)
        self.pids["dev server"] = proc.pid
        self.address = f"{LOOPBACK}:{tport}"
        self.queue = f"bench-streams-{tport}"
        cfg = self.dir / "catalog.yaml"
        cfg.write_text(
            "providers:\n"
            f"  - {{id: up, type: vllm, base_url: '{self.upstream}'}}\n"
            "models:\n"
            f"  - {{id: fast, provider: up, upstream_model: {FAST}, weight: 5, "
            "max_context_tokens: 32000}\n"
            f"  - {{id: long, provider: up, upstream_model: {LONG}, weight: 4, "
            "max_context_tokens: 32000}\n")
        self.catalog = cfg
        self.start_worker({})
        self.start_gateway("local stream", {"TOKENHUB_TEMPORAL_ENABLED": "false"})
        self.start_gateway("workflow stream (own queue)", {})
        self.start_gateway("workflow stream (subscribe only)",
                           {"TOKENHUB_TEMPORAL_STREAM_RELAY": "subscribe"})

    def env(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        data = self.dir / name.split()[0] / uuid.uuid4().hex[:6]
        data.mkdir(parents=True, exist_ok=True)
        return {"TOKENHUB_CONFIG": str(self.catalog), "TOKENHUB_DATA_DIR": str(data),
                "TOKENHUB_ENV": "development", "TOKENHUB_REQUIRE_API_KEY": "false",
                "TOKENHUB_LOG_LEVEL": "WARNING", "TOKENHUB_HOST": LOOPBACK,
                "TOKENHUB_TEMPORAL_ENABLED": "true", "TOKENHUB_TEMPORAL_ADDRESS": self.address,
                "TOKENHUB_TEMPORAL_TASK_QUEUE": self.queue,
                "TOKENHUB_RATE_LIMIT_RPS": "1000000", "TOKENHUB_RATE_LIMIT_BURST": "1000000",
                "PYTHONPATH": str(ROOT), **extra}

    def start_worker(self, extra: dict[str, str]) -> None:
        if self._worker is not None:
            self.group.kill(self._worker)
        self._worker = self.group.start([sys.executable, "-m", "api", "worker"],
                                        self.env("worker", extra))
        self.pids["worker"] = self._worker.pid

    def start_gateway(self, name: str, extra: dict[str, str]) -> None:
        old = self._gateways.pop(name, None)
        if old is not None:
            self.group.kill(old)
        port = free_port()
        proc = self.group.start([sys.executable, "-m", "api", "serve", "--port", str(port)],
                                self.env(name, extra))
        wait_http(f"http://{LOOPBACK}:{port}/healthz", 90, proc=proc)
        self._gateways[name] = proc
        self.pids[name] = proc.pid
        self.urls[name] = f"http://{LOOPBACK}:{port}/v1/chat/completions"

    def stop(self) -> None:
        self.group.stop()


def _model(target: str, model: str) -> str:
    return {"fast": FAST, "long": LONG}[model] if target == "direct" else model


async def long_streams(stack: Stack, name: str, n: int) -> dict[str, float]:
    """``n`` long workflow streams at once; CPU per stream by process."""
    procs = {"gateway": stack.pids[name], "worker": stack.pids["worker"],
             "dev server": stack.pids["dev server"]}
    before = {k: cpu_s(pid) for k, pid in procs.items()}
    t0 = time.perf_counter()
    r = await series(stack.urls[name], "long", n, n, warmup=False)
    wall = time.perf_counter() - t0
    for k, pid in procs.items():
        r[f"cpu_s_per_stream {k}"] = (cpu_s(pid) - before[k]) / n
    r["wall_s"] = wall
    return r


async def resume_latency(url: str, n: int) -> list[float]:
    """First replayed event of ``GET /v1/runs/{id}/stream`` (Last-Event-ID 10) of a
    finished run."""
    out = []
    base = url.removesuffix("/v1/chat/completions")
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=60) as c:
        for _ in range(n + 1):
            rid = f"r-{uuid.uuid4().hex}"
            body = {"model": "fast", "messages": MSG, "stream": True}
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
    return out[1:]  # the first is a warm-up


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def measure(quick: bool, long_n: int, batches: list[int]) -> dict[str, Any]:
    stack = Stack()
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "quick": quick, "cpus": os.cpu_count(), "rows": [],
                           "long": None, "batch_curve": [], "resume": {}}
    try:
        stack.start()
        n1, n16 = (10, 32) if quick else (40, 128)
        for c in (1, 16):
            for target in TARGETS:
                r = await series(stack.urls[target], _model(target, "fast"),
                                 n1 if c == 1 else n16, c)
                _log(f"{target:34} c={c:<3} ttft p50 {r['ttft_p50']:7.1f} p99 "
                     f"{r['ttft_p99']:7.1f} gap p99 {r['gap_p99']:7.1f} err {r['errors']} "
                     f"load {r['load']:.2f} other {r['other_cpu_pct']:.0f}%")
                out["rows"].append({"target": target, "c": c, **r})
        own = "workflow stream (own queue)"
        n = 10 if quick else long_n
        out["long"] = await long_streams(stack, own, n)
        _log(f"long x{n}: {out['long']}")
        res = await resume_latency(stack.urls[own], 5 if quick else 20)
        out["resume"] = {"n": len(res), "p50": pct(res, 50), "p99": pct(res, 99),
                         "load": loadavg()}
        _log(f"resume {out['resume']}")
        for ms in batches:
            extra = {"TOKENHUB_TEMPORAL_STREAM_BATCH_MS": str(ms)}
            stack.start_worker(extra)
            stack.start_gateway(own, extra)
            r = await long_streams(stack, own, 10 if quick else 20)
            fast = await series(stack.urls[own], "fast", 10 if quick else 20, 1)
            out["batch_curve"].append({"batch_ms": ms, "long": r, "fast_c1": fast})
            _log(f"batch {ms} ms: {r} / fast {fast}")
    finally:
        stack.stop()
    return out


def _f(x: float) -> str:
    return f"{x:.1f}"


def report(res: dict[str, Any]) -> str:
    rows = res["rows"]
    lines = [f"# Durable streams ({res['date']}, {res['cpus']} CPUs"
             f"{', quick' if res['quick'] else ''})", "",
             "`python -m bench --streams`: each piece its own process (raw asyncio upstream, "
             "Temporal dev server, one `api worker`, three `api serve` gateways), the client "
             "in the bench process. Upstream: 50 chunks 10 ms apart (long: 200 chunks 50 ms "
             "apart). Max gap: the largest gap between two relayed events of one stream; "
             "p50/p99 over streams. load: 1-min load average; other: CPU of processes "
             "outside the bench, in % of one core.", "",
             "| target | c | n | TTFT p50 ms | TTFT p99 ms | total p50 ms | max gap p50 ms "
             "| max gap p99 ms | in the answer: max gap p99 ms | end (finish → usage) "
             "p50 / p99 ms | errors | load | other |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['c']} | {r['n']} | {_f(r['ttft_p50'])} | "
                     f"{_f(r['ttft_p99'])} | {_f(r['total_p50'])} | {_f(r['gap_p50'])} | "
                     f"{_f(r['gap_p99'])} | {_f(r.get('answer_gap_p99', float('nan')))} | "
                     f"{_f(r.get('end_p50', float('nan')))} / "
                     f"{_f(r.get('end_p99', float('nan')))} | {r['errors']} | "
                     f"{r['load']:.2f} | {r['other_cpu_pct']:.0f} % |")
    by = {(r["target"], r["c"]): r for r in rows}
    lines += ["", "TTFT overhead over the local stream (target ≤ 60 ms p50, ≤ 150 ms p99 at "
              "c=1):", ""]
    for c in (1, 16):
        local = by.get(("local stream", c))
        for t in TARGETS[2:]:
            r = by.get((t, c))
            if local and r:
                lines.append(f"- c={c}, {t}: +{r['ttft_p50'] - local['ttft_p50']:.1f} ms p50, "
                             f"+{r['ttft_p99'] - local['ttft_p99']:.1f} ms p99")
    lg = res["long"]
    if lg:
        lines += ["", f"Long workflow streams (own queue, default batch 100 ms): {lg['n']} at "
                  f"once, 200 chunks 50 ms apart: errors {lg['errors']}, TTFT p50 "
                  f"{_f(lg['ttft_p50'])} ms, total p50 {_f(lg['total_p50'])} ms, max gap "
                  f"p50 / p99 {_f(lg['gap_p50'])} / {_f(lg['gap_p99'])} ms (target ≤ 2×50 + "
                  f"100 = 200 ms), load {lg['load']:.2f}, other {lg['other_cpu_pct']:.0f} %. "
                  "CPU per stream (ms): gateway "
                  f"{lg['cpu_s_per_stream gateway'] * 1000:.0f}, worker "
                  f"{lg['cpu_s_per_stream worker'] * 1000:.0f}, dev server "
                  f"{lg['cpu_s_per_stream dev server'] * 1000:.0f}."]
    if res["batch_curve"]:
        lines += ["", "The batch interval (TOKENHUB_TEMPORAL_STREAM_BATCH_MS) against CPU per "
                  "long stream (ms, by process) and cadence:", "",
                  "| batch ms | long streams | gateway | worker | dev server | total "
                  "| long max gap p99 ms | c=1 fast: TTFT p50 ms | c=1 fast: max gap p99 ms "
                  "| c=1 fast: in the answer, max gap p99 ms | load |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for b in res["batch_curve"]:
            lg, fast = b["long"], b["fast_c1"]
            cpu = [lg[f"cpu_s_per_stream {k}"] * 1000 for k in ("gateway", "worker",
                                                                 "dev server")]
            lines.append(f"| {b['batch_ms']} | {lg['n']} ({lg['errors']} errors) | "
                         f"{cpu[0]:.0f} | {cpu[1]:.0f} | {cpu[2]:.0f} | {sum(cpu):.0f} | "
                         f"{_f(lg['gap_p99'])} | {_f(fast['ttft_p50'])} | "
                         f"{_f(fast['gap_p99'])} | "
                         f"{_f(fast.get('answer_gap_p99', float('nan')))} | {lg['load']:.2f} |")
    rs = res["resume"]
    if rs:
        lines += ["", f"Resume (`GET /v1/runs/{{id}}/stream`, `Last-Event-ID: 10`, finished "
                  f"run, n={rs['n']}): first replayed event p50 {_f(rs['p50'])} ms, p99 "
                  f"{_f(rs['p99'])} ms (target ≤ 100 ms p50); load {rs['load']:.2f}."]
    return "\n".join(lines) + "\n"


def run(quick: bool = False, long_n: int = 40, batches: list[int] | None = None,
        out: Path | None = None) -> str:
    res = asyncio.run(measure(quick, long_n, batches if batches is not None
                              else [50, 100, 200, 500]))
    text = report(res)
    stem = out or RESULTS / "streams"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    stem.with_suffix(".md").write_text(text)
    return text


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    from bench.procs import install_cleanup, stop_all

    ap = argparse.ArgumentParser(prog="python -m bench.streams")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--long", type=int, default=40, help="long streams at once")
    ap.add_argument("--batches", type=_ints, default=[50, 100, 200, 500])
    args = ap.parse_args()
    install_cleanup()
    try:
        print(run(args.quick, args.long, args.batches))
    finally:
        stop_all()
