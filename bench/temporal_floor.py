"""The floor under TokenHub's workflow path: Temporal itself, with no TokenHub code.

Starts the tuned dev server (engine/devserver.py) on 127.0.0.1 — with the server's
default 4 task-queue partitions, then with the 1 partition we configure — and an in-process
unsandboxed worker, then runs N sequential workflows (c=1) of three kinds: empty, with
two no-op local activities (a chat run's shape: provider call + request-log write), and
with one no-op regular activity. Latency is start → result, as the gateway sees it.

    python -m bench.temporal_floor [--runs 300]  →  bench/results/temporal-floor.md
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.procs import free_port, wait_port
from engine import devserver

RESULTS = Path(__file__).parent / "results"


@activity.defn
async def noop(x: str) -> str:
    return x


@workflow.defn
class FloorWorkflow:
    @workflow.run
    async def run(self, shape: str) -> str:
        timeout = timedelta(seconds=10)
        if shape == "local":
            for _ in range(2):
                await workflow.execute_local_activity(noop, "x", start_to_close_timeout=timeout)
        elif shape == "activity":
            await workflow.execute_activity(noop, "x", start_to_close_timeout=timeout)
        return shape


SHAPES = [("empty workflow", "empty"),
          ("2 no-op local activities (a chat run's shape)", "local"),
          ("1 no-op regular activity", "activity")]


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


async def _run(port: int, runs: int) -> list[str]:
    for attempt in range(50):  # the port opens before the frontend is healthy
        try:
            client = await Client.connect(f"127.0.0.1:{port}")
            break
        except RuntimeError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)
    rows = []
    async with Worker(client, task_queue="floor", workflows=[FloorWorkflow],
                      activities=[noop], workflow_runner=UnsandboxedWorkflowRunner()):
        for name, shape in SHAPES:
            lat = []
            for i in range(runs + 20):
                t0 = time.perf_counter()
                await client.execute_workflow(FloorWorkflow.run, shape, task_queue="floor",
                                              id=f"floor-{uuid.uuid4().hex}")
                if i >= 20:  # warm-up
                    lat.append((time.perf_counter() - t0) * 1000)
            lat.sort()
            rows.append(f"| {name} | {statistics.median(lat):.1f} | {_pct(lat, 0.9):.1f} "
                        f"| {_pct(lat, 0.99):.1f} |")
            print(rows[-1])
    return rows


_PARTITIONS = ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions")


def _command(port: int, one_partition: bool) -> list[str]:
    """The project's dev-server command, or the same without the single-partition keys
    (the server's default: 4 task-queue partitions)."""
    cmd = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=None)
    if one_partition:
        return cmd
    out: list[str] = []
    for arg in cmd:
        if out and out[-1] == "--dynamic-config-value" and arg.startswith(_PARTITIONS):
            out.pop()
            continue
        out.append(arg)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "temporal-floor.md")
    args = parser.parse_args()
    rows: list[str] = []
    for one_partition in (False, True):
        label = "1 task-queue partition" if one_partition else "4 partitions (default)"
        port = free_port()
        server = subprocess.Popen(_command(port, one_partition), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_port(port, proc=server)
            rows += [r.replace("| ", f"| {label} | ", 1)
                     for r in asyncio.run(_run(port, args.runs))]
        finally:
            server.terminate()
            server.wait(15)
    lines = [f"# Temporal floor under the workflow path ({datetime.now(UTC):%Y-%m-%d})", "",
             f"`python -m bench.temporal_floor`: tuned dev server (engine/devserver.py), "
             f"in-process unsandboxed Python worker, {args.runs} sequential workflows per row "
             "after 20 warm-up, start → result; no TokenHub code. Same 2-core box.", "",
             "| dev server | workflow | p50 ms | p90 ms | p99 ms |",
             "| --- | --- | --- | --- | --- |", *rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
