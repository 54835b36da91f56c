"""Load generation with wrk (Debian package; `bench/setup.sh` installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


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
    loadavg: float


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"cannot parse latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _script(model: str) -> str:
    body = (f'{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}')
    fd, path = tempfile.mkstemp(suffix=".lua", prefix="wrk-")
    with os.fdopen(fd, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = '{body}'\n")
    return path


def run_wrk(url: str, *, model: str, concurrency: int, duration_s: float, target: str,
            delay_ms: int) -> Point:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found: run bench/setup.sh (apt-get install wrk)")
    loadavg = os.getloadavg()[0]
    script = _script(model)
    threads = 1 if concurrency == 1 else 2
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, int(duration_s))}s",
             "--timeout", "10s", "--latency", "-s", script, url],
            capture_output=True, text=True, timeout=duration_s + 60, check=True).stdout
    finally:
        os.unlink(script)
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return Point(target, concurrency, delay_ms, rps, _ms(pct["50"]), _ms(pct["90"]),
                 _ms(pct["99"]), errors, total, loadavg)
