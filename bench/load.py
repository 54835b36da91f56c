"""Load generation with wrk (Debian package; ``bench/setup.sh`` installs it).

wrk is closed-loop: each of ``-c`` connections sends its next request when the previous
answer arrives, so latency is service time under that concurrency (no coordinated-omission
correction; that would need wrk2's fixed rate). Its ``--latency`` percentiles (50/75/90/99)
come from a per-request histogram at 1 µs resolution. Each point also records wrk's own CPU
time (``getrusage`` of the finished child): the evidence that the load generator is not the
bottleneck on this 2-core box.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.cpu import Meter

SCRIPT = Path(__file__).with_name("chat.lua")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass
class Point:
    target: str
    concurrency: int
    delay_ms: int
    rps: float
    p50: float
    p90: float
    p99: float
    errors: int
    requests: int
    loadavg: float  # 1-minute load average just before the point
    loadgen_cpu_pct: float = 0.0  # wrk's CPU time / wall time, in % of one core
    other_cpu_pct: float = 0.0  # CPU of processes outside the benchmark, % of one core
    duration_s: float = 0.0


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse(out: str) -> dict[str, float]:
    """The figures of one wrk --latency report."""
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and total and {"50", "90", "99"} <= pct.keys()):
        raise RuntimeError(f"unexpected wrk output: {out[-300:]!r}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return {"rps": float(rps.group(1)), "requests": int(total.group(1)), "errors": errors,
            "p50": _ms(pct["50"]), "p90": _ms(pct["90"]), "p99": _ms(pct["99"])}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(url: str, *, model: str, concurrency: int, duration_s: float, target: str,
            delay_ms: int) -> Point:
    """One bounded wrk run (whole seconds, ≥ 1; killed if it overruns by 60 s)."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found: run bench/setup.sh (apt-get install wrk)")
    seconds = max(1, round(duration_s))
    threads = min(2, concurrency)
    loadavg = os.getloadavg()[0]
    cpu0 = _children_cpu()
    meter = Meter()
    res = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s",
         "--latency", "-s", str(SCRIPT), url, "--", model],
        capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu = _children_cpu() - cpu0
    other = meter.other_cpu_pct(excluded_s=cpu)
    if res.returncode != 0:
        raise RuntimeError(f"wrk failed ({res.returncode}): {res.stderr.strip()[-300:]}")
    f = parse(res.stdout)
    return Point(target, concurrency, delay_ms, f["rps"], f["p50"], f["p90"], f["p99"],
                 int(f["errors"]), int(f["requests"]), loadavg,
                 loadgen_cpu_pct=cpu / seconds * 100, other_cpu_pct=other,
                 duration_s=seconds)
