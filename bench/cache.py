"""Issue 16's speed rows: a response-cache hit against the upstream-less floor and the local
path, and a feedback write. ``python -m bench.cache [--duration S] [--workers N] [--redis]``.

One fake upstream (0 ms), one TokenHub (local path, SQLite by default; ``--redis``: the
cache in Redis at 127.0.0.1:6379) whose catalog has ``bench-0ms`` (not cached) and
``bench-cached`` (same upstream, ``cache_ttl_s: 3600``: every request after the first is a
hit). wrk measures, each point ``duration`` seconds:

- floor: ``GET /healthz`` at c=1 (the gateway answering without any upstream);
- hit at c=1 (p50 over the floor: target ≤ 0.5 ms) and at c=64 (throughput: target ≥ 2×
  the local path's at c=64);
- feedback: ``POST /v1/feedback`` at c=1, a new source each time (target p50 ≤ 2 ms).

Writes ``bench/results/cache.md``. Run it on the quietest box you can get
(``/proc/loadavg``); every process is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from bench.load import SCRIPT, Point, parse
from bench.procs import ROOT, install_cleanup, stop_all
from bench.targets import Upstreams, launch, model_name, tokenhub_spec

FEEDBACK_LUA = Path(__file__).with_name("feedback.lua")
OUT = ROOT / "bench" / "results" / "cache.md"


def wrk(url: str, *, c: int, seconds: int, script: Path | None = None,
        arg: str | None = None) -> Point:
    cmd = ["wrk", f"-t{min(2, c)}", f"-c{c}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    if arg is not None:
        cmd += ["--", arg]
    load = os.getloadavg()[0]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         check=True)
    f = parse(res.stdout)
    return Point(url, c, 0, f["rps"], f["p50"], f["p90"], f["p99"], int(f["errors"]),
                 int(f["requests"]), load, duration_s=seconds)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--redis", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: run bench/setup.sh")
    install_cleanup()
    ups = Upstreams(delays=(0,))
    try:
        ups.start()
        spec = tokenhub_spec(ups, args.workers, name=f"tokenhub-cache-w{args.workers}")
        catalog = Path(spec.procs[-1].env["TOKENHUB_CONFIG"])
        catalog.write_text(catalog.read_text() + (
            "  - {id: bench-cached, provider: up0, upstream_model: bench-model, weight: 5, "
            "max_context_tokens: 32000, cache_ttl_s: 3600}\n"))
        if args.redis:
            spec.procs[-1].env["TOKENHUB_CACHE_URL"] = "redis://127.0.0.1:6379/0"
        t = launch(spec, ups)
        chat = f"{t.base}/v1/chat/completions"
        with httpx.Client(trust_env=False, timeout=10) as c:
            body = {"model": "bench-cached", "messages": [{"role": "user", "content": "hi"}]}
            c.post(chat, json=body).raise_for_status()  # the miss that fills the cache
            hit = c.post(chat, json=body)
            assert hit.headers["x-tokenhub-cache"] == "hit", hit.headers
            rid = hit.headers["x-request-id"]
        d = args.duration
        rows = {
            "floor /healthz c=1": wrk(f"{t.base}/healthz", c=1, seconds=d),
            "cache hit c=1": wrk(chat, c=1, seconds=d, script=SCRIPT, arg="bench-cached"),
            "local path c=1": wrk(chat, c=1, seconds=d, script=SCRIPT, arg=model_name(0)),
            "cache hit c=64": wrk(chat, c=64, seconds=d, script=SCRIPT, arg="bench-cached"),
            "local path c=64": wrk(chat, c=64, seconds=d, script=SCRIPT, arg=model_name(0)),
            "feedback write c=1": wrk(f"{t.base}/v1/feedback", c=1, seconds=d,
                                      script=FEEDBACK_LUA, arg=rid),
        }
    finally:
        stop_all()
    floor, hit1 = rows["floor /healthz c=1"], rows["cache hit c=1"]
    ratio = rows["cache hit c=64"].rps / max(rows["local path c=64"].rps, 1e-9)
    fb = rows["feedback write c=1"]
    lines = [f"# Response cache and feedback ({'Redis' if args.redis else 'SQLite'} store, "
             f"{args.workers} gateway process(es), {d} s per point)", "",
             "| point | req/s | p50 ms | p90 ms | p99 ms | errors | load avg before |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {p.rps:,.0f} | {p.p50:.3f} | {p.p90:.3f} | {p.p99:.3f} | {p.errors} | "
              f"{p.loadavg:.2f} |" for k, p in rows.items()]
    lines += ["", "| target | measured | |", "| --- | --- | --- |",
              f"| hit p50 over the floor, c=1 ≤ 0.5 ms | {hit1.p50 - floor.p50:+.3f} ms | "
              f"{'met' if hit1.p50 - floor.p50 <= 0.5 else 'not met'} |",
              f"| hit throughput ≥ 2× local path, c=64 | {ratio:.2f}× | "
              f"{'met' if ratio >= 2 else 'not met'} |",
              f"| feedback write p50 ≤ 2 ms | {fb.p50:.3f} ms | "
              f"{'met' if fb.p50 <= 2 else 'not met'} |"]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
