"""CPU accounting for one load point (Linux /proc), to tell a quiet box from a busy one.

The box is shared (2 cores here): a test suite or a build running beside the benchmark
moves its figures. ``Meter`` takes the system's busy CPU time and that of this process and
all its descendants (upstreams, targets, their workers) before and after a point; what is
left, less wrk's own time, was spent by other processes ("other CPU", in % of one core).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

HZ = os.sysconf("SC_CLK_TCK")


def _system_busy() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: what processes are charged with
    # (irq/softirq time, e.g. loopback traffic, is attributed to no process: left out)
    return fields[0] + fields[1] + fields[2]


def _procs() -> dict[int, tuple[int, int]]:
    """pid → (ppid, utime + stime ticks) for every process."""
    out: dict[int, tuple[int, int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            rest = (d / "stat").read_text().rsplit(")", 1)[1].split()
            out[int(d.name)] = (int(rest[1]), int(rest[11]) + int(rest[12]))
    return out


def _ours() -> dict[int, int]:
    """CPU ticks of this process and all its descendants."""
    procs = _procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    todo: list[int] = [os.getpid()]
    seen: dict[int, int] = {}
    while todo and len(seen) < 10_000:
        pid = todo.pop()
        if pid in procs and pid not in seen:
            seen[pid] = procs[pid][1]
            todo += children.get(pid, [])
    return seen


class Meter:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0 = _system_busy()
        self.ours0 = _ours()

    def other_cpu_pct(self, excluded_s: float = 0.0) -> float:
        """% of one core used by other processes since the start (``excluded_s``: CPU
        seconds of our own children already reaped, i.e. wrk)."""
        wall = time.monotonic() - self.t0
        busy = _system_busy() - self.busy0
        ours1 = _ours()
        ours = sum(t - self.ours0.get(pid, 0) for pid, t in ours1.items())
        other_s = busy / HZ - ours / HZ - excluded_s
        return max(0.0, other_s / wall * 100) if wall > 0 else 0.0


def wait_quiet(threshold_pct: float, max_s: float, step_s: float = 1.0) -> float:
    """Wait (at most ``max_s``) until other processes use ≤ ``threshold_pct`` of a core over
    ``step_s``; return the last reading."""
    deadline = time.monotonic() + max_s
    other = 0.0
    while True:
        m = Meter()
        time.sleep(step_s)
        other = m.other_cpu_pct()
        if other <= threshold_pct or time.monotonic() >= deadline:
            return other
