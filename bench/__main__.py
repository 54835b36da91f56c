"""``python -m bench`` (``make bench``): the benchmark matrix, side by side with LiteLLM.

Starts everything on 127.0.0.1, runs bounded loads with wrk, stops everything by PID, and
writes bench/results/<date>.md (+ .json) and <date>-latency.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, special
from bench.load import Point, run_wrk
from bench.targets import (
    DELAYS,
    Target,
    Upstreams,
    model_name,
    start_direct,
    start_litellm,
    start_tokenhub,
)

RESULTS = Path(__file__).parent / "results"


def matrix(t: Target, ups: Upstreams, conc: list[int], duration: float) -> list[Point]:
    points = []
    for delay in DELAYS:
        for c in conc:
            url = t.url(delay, ups)
            run_wrk(url, model=model_name(delay), concurrency=c, duration_s=1, target=t.name,
                    delay_ms=delay)  # warm-up
            p = run_wrk(url, model=model_name(delay), concurrency=c, duration_s=duration,
                        target=t.name, delay_ms=delay)
            print(f"  {t.name:24} c={c:<3} delay={delay:<3} rps={p.rps:8.0f} "
                  f"p50={p.p50:7.2f} p99={p.p99:7.2f} err={p.errors}", file=sys.stderr)
            points.append(p)
    return points


def throughput(t: Target, ups: Upstreams, duration: float) -> Point:
    p = run_wrk(t.url(0, ups), model=model_name(0), concurrency=64, duration_s=duration,
                target=t.name, delay_ms=0)
    print(f"  {t.name:24} throughput c=64: {p.rps:.0f} rps, errors {p.errors}",
          file=sys.stderr)
    return p


def _with(target: Target, fn: Any) -> Any:
    try:
        return fn(target)
    finally:
        target.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 s per point instead of 10 s")
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--targets", default="direct,tokenhub-local,tokenhub-workflow,litellm")
    ap.add_argument("--skip-special", action="store_true")
    args = ap.parse_args()
    duration = args.duration or (2.0 if args.quick else 10.0)
    conc = [int(c) for c in args.concurrency.split(",")]
    wanted = set(args.targets.split(","))
    ups = Upstreams()
    ups.start()
    out: dict[str, Any] = {"date": datetime.now(UTC).isoformat(), "duration_s": duration,
                           "points": [], "throughput": [], "special": {}}
    starters = {"direct": lambda: start_direct(ups),
                "tokenhub-local": lambda: start_tokenhub(ups),
                "tokenhub-workflow": lambda: start_tokenhub(ups, temporal=True),
                "litellm": lambda: start_litellm(ups)}
    try:
        for name, start in starters.items():
            if name not in wanted:
                continue
            print(f"target {name}", file=sys.stderr)
            t = start()
            try:
                out["points"] += [asdict(p) for p in matrix(t, ups, conc, duration)]
                if not args.skip_special and name == "tokenhub-local":
                    out["special"]["vote_local"] = special.vote_fanout(t)
                if not args.skip_special and name == "tokenhub-workflow":
                    out["special"]["vote_temporal"] = special.vote_fanout(t)
                    out["special"]["temporal_killed"] = special.temporal_killed(t)
                    time.sleep(1)
                    p = run_wrk(t.url(0, ups), model=model_name(0), concurrency=1,
                                duration_s=duration, target="circuit-open", delay_ms=0)
                    out["special"]["circuit_open_p50_ms"] = p.p50
            finally:
                t.stop()
        if "tokenhub-local" in wanted:
            out["throughput"].append(asdict(_with(start_tokenhub(ups, workers=2),
                                                  lambda t: throughput(t, ups, duration))))
            if not args.skip_special:
                out["special"]["soak"] = _with(start_tokenhub(ups, name="tokenhub-soak"),
                                               lambda t: special.soak(t, ups))
        if "litellm" in wanted:
            out["throughput"].append(asdict(_with(start_litellm(ups, workers=2),
                                                  lambda t: throughput(t, ups, duration))))
    finally:
        ups.group.stop()
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / datetime.now(UTC).strftime("%Y-%m-%d")
    stem.with_suffix(".json").write_text(json.dumps(out, indent=2))
    report.write(out, stem)
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
