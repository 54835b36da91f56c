"""``python -m bench`` (``make bench``): the benchmark matrix, side by side with LiteLLM.

Starts the fake upstreams and each target on 127.0.0.1, runs bounded wrk loads (every
target × upstream delay × concurrency, a 1 s warm-up before each point), stops everything by
PID (also on Ctrl-C, SIGTERM or an error), and writes bench/results/<date>.md (+ .json) and
<date>-latency.png. A target that cannot start gets a "not available" row.

    python -m bench --quick                       # ~2 s per point, every target
    python -m bench --targets direct,litellm      # 10 s per point, two targets
    python -m bench --only-streams                # durable streams (bench/streams.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, special
from bench.cpu import wait_quiet
from bench.load import Point, run_wrk
from bench.procs import WORK, install_cleanup, prune_work, stop_all
from bench.report import QUIET_PCT
from bench.targets import ALIASES, BUILDERS, Target, Unavailable, Upstreams, model_name, start

RESULTS = Path(__file__).parent / "results"
DEFAULT_TARGETS = "direct,tokenhub-local,tokenhub-temporal,litellm"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~2 s per point (development)")
    ap.add_argument("--duration", type=float, default=None,
                    help="seconds per point (default 10, or 2 with --quick)")
    ap.add_argument("--concurrency", type=_ints, default=[1, 16, 64], help="e.g. 1,16,64")
    ap.add_argument("--delays", type=_ints, default=[0, 50], help="upstream delays in ms")
    ap.add_argument("--targets", default=DEFAULT_TARGETS,
                    help=f"comma-separated, of {', '.join(BUILDERS)}")
    ap.add_argument("--workers", type=int, default=2,
                    help="worker processes for the throughput point (c=64, 0 ms)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-special", action="store_true",
                    help="no vote / Temporal-killed / circuit-open / soak measurements")
    ap.add_argument("--quiet-wait", type=float, default=20,
                    help="before each point, wait up to this many seconds for other "
                    "processes to use ≤ 25 %% of a core (0: don't wait)")
    ap.add_argument("--streams", action="store_true",
                    help="also run the durable-streams benchmark (bench/streams.py: TTFT, "
                    "cadence, 40 long streams, batch interval vs CPU, resume) → "
                    "bench/results/streams.md")
    ap.add_argument("--only-streams", action="store_true",
                    help="run only the durable-streams benchmark")
    ap.add_argument("--out", type=Path, default=None,
                    help="results stem (default bench/results/<YYYY-MM-DD>)")
    args = ap.parse_args(argv)
    args.targets = [ALIASES.get(t.strip(), t.strip()) for t in args.targets.split(",")
                    if t.strip()]
    unknown = [t for t in args.targets if t not in BUILDERS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; known: {', '.join(BUILDERS)}")
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    return args


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Run:
    """One benchmark run: its settings, the upstreams, and what has been measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ups = Upstreams(tuple(args.delays))
        self.out: dict[str, Any] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "duration_s": max(1, round(args.duration)), "concurrency": args.concurrency,
            "delays": args.delays, "targets": args.targets, "workers": args.workers,
            "points": [], "throughput": [], "special": {}, "unavailable": [], "failures": []}

    def point(self, t: Target, c: int, delay: int, *, warmup: bool = True,
              label: str | None = None) -> Point | None:
        url, model = t.url(delay), model_name(delay)
        if self.args.quiet_wait > 0:
            other = wait_quiet(QUIET_PCT, self.args.quiet_wait)
            if other > QUIET_PCT:
                _log(f"  box still busy ({other:.0f} % of a core used by other processes)")
        try:
            if warmup:
                run_wrk(url, model=model, concurrency=c, duration_s=1, target=t.name,
                        delay_ms=delay)
            p = run_wrk(url, model=model, concurrency=c, duration_s=self.args.duration,
                        target=label or t.name, delay_ms=delay)
        except (RuntimeError, OSError) as err:
            _log(f"  {t.name} c={c} delay={delay}: FAILED {err}")
            self.out["failures"].append({"target": t.name, "concurrency": c,
                                         "delay_ms": delay, "error": str(err)[:300]})
            return None
        _log(f"  {p.target:22} c={c:<3} delay={delay:<3} rps={p.rps:8.0f} p50={p.p50:8.2f} "
             f"p99={p.p99:8.2f} err={p.errors} load={p.loadavg:.2f} "
             f"wrk-cpu={p.loadgen_cpu_pct:.0f}%")
        return p

    def with_target(self, name: str, workers: int, fn: Callable[[Target], None]) -> None:
        _log(f"target {name} (workers={workers})")
        try:
            t = start(name, self.ups, workers)
        except Unavailable as err:
            _log(f"  not available: {err}")
            self.out["unavailable"].append({"target": name, "workers": workers,
                                            "reason": str(err)[:500]})
            return
        try:
            fn(t)
        except (RuntimeError, OSError, ValueError) as err:
            _log(f"  {name} failed: {err!r}")
            self.out["failures"].append({"target": t.name, "error": repr(err)[:300]})
        finally:
            t.stop()

    def matrix(self, t: Target) -> None:
        for delay in self.args.delays:
            for c in self.args.concurrency:
                p = self.point(t, c, delay)
                if p is not None:
                    self.out["points"].append(asdict(p))
        self.specials(t)

    def specials(self, t: Target) -> None:
        if self.args.skip_special:
            return
        sp = self.out["special"]
        try:
            if t.name.startswith(("tokenhub-local", "tokenhub-temporal")) and \
                    {0, 50} <= set(self.args.delays):
                path = "local" if "local" in t.name else "temporal"
                sp["vote_" + path] = special.vote_fanout(t, judge_delay=0)
                sp["vote_slow_judge_" + path] = special.vote_fanout(t, judge_delay=50)
            if t.name.startswith("tokenhub-temporal") and 0 in self.args.delays:
                sp["temporal_killed"] = special.temporal_killed(t)
                time.sleep(1)
                p = self.point(t, 1, 0, warmup=False, label="circuit-open")
                sp["circuit_open_p50_ms"] = p.p50 if p else None
        except Exception as err:  # noqa: BLE001 - a special measurement is optional
            _log(f"  special measurement on {t.name} failed: {err!r}")
            self.out["failures"].append({"target": t.name, "error": f"special: {err!r}"[:300]})

    def throughput(self, t: Target) -> None:
        p = self.point(t, 64, 0)
        if p is not None:
            self.out["throughput"].append(asdict(p))

    def soak(self, t: Target) -> None:
        self.out["special"]["soak"] = special.soak(t)

    def run(self) -> None:
        self.ups.start()
        for name in self.args.targets:
            self.with_target(name, 1, self.matrix)
        if not self.args.skip_throughput and 0 in self.args.delays:
            for name in ("tokenhub-local", "litellm"):
                if name in self.args.targets:
                    self.with_target(name, self.args.workers, self.throughput)
        if not self.args.skip_special and "tokenhub-local" in self.args.targets \
                and 0 in self.args.delays:
            self.with_target("tokenhub-local", 1, self.soak)


def run_streams(args: argparse.Namespace) -> None:
    from bench import streams

    _log("durable streams (bench/streams.py)")
    if args.quiet_wait > 0:
        wait_quiet(QUIET_PCT, args.quiet_wait)
    print(streams.run(quick=args.quick))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    prune_work()
    if args.only_streams:
        try:
            run_streams(args)
        finally:
            stop_all()
        return 0
    run = Run(args)
    done = False
    try:
        run.run()
        done = True
    except KeyboardInterrupt as err:
        _log(f"interrupted ({err or 'Ctrl-C'}): stopping everything")
        return 130
    finally:
        stop_all()
        if not done:  # interrupted or crashed: keep what was measured, out of results/
            WORK.mkdir(parents=True, exist_ok=True)
            (WORK / "partial.json").write_text(json.dumps(run.out, indent=2))
            _log(f"incomplete run; measured points kept in {WORK / 'partial.json'}")
    stem = args.out or RESULTS / datetime.now(UTC).strftime("%Y-%m-%d")
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(run.out, indent=2) + "\n")
    report.write(run.out, stem)
    print(stem.with_suffix(".md").read_text())
    if args.streams:
        try:
            run_streams(args)
        finally:
            stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
