"""Batch throughput vs the synchronous workflow path, on one dev server (issue 11).

Starts a tuned Temporal dev server, the fake provider (50 ms per answer), one `tokenhub
worker` process and a gateway (in this process) on 127.0.0.1, then measures, in the same
run: the synchronous workflow path at c=16 (`POST /v1/chat`), and an N-item batch at
max_concurrency 16 (upload + create, then until completed); CPU seconds of the worker and
the dev server per item/request (from /proc), and the worker's peak RSS.
    python -m bench.batches [--items 1000] [--sync 400]  →  bench/results/batches.md
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai

from api.app import create_app
from engine import devserver
from shared.config import Settings, load_catalog
from tests.conftest import catalog_yaml
from tests.fake_provider import start_in_thread
from tests.integration.procs import kill, start_worker, wait_port
from tests.support.server import ThreadedServer, free_port

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def _tree_cpu(pid: int) -> float:
    total = _cpu_s(pid)
    for child in Path(f"/proc/{pid}/task").iterdir():
        kids = (child / "children").read_text().split()
        total += sum(_tree_cpu(int(k)) for k in kids)
    return total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _sync_rate(url: str, n: int, c: int = 16) -> float:
    body = {"request": {"messages": [{"role": "user", "content": "sync"}],
                        "model_hint": "small"}}
    left = [n]
    lock = threading.Lock()

    def run() -> None:
        with httpx.Client(base_url=url, trust_env=False, timeout=60) as h:
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                h.post("/v1/chat", json=body).raise_for_status()

    threads = [threading.Thread(target=run) for _ in range(c)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - t0)


def _batch(url: str, items: int) -> dict[str, Any]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="bench", max_retries=0,
                           http_client=httpx.Client(trust_env=False, timeout=120))
    data = "".join(json.dumps({
        "custom_id": f"b{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "small", "messages": [{"role": "user", "content": f"item {i}"}]},
    }) + "\n" for i in range(items)).encode()
    t0 = time.perf_counter()
    f = client.files.create(file=("bench.jsonl", io.BytesIO(data)), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                              completion_window="24h")
    submitted = time.perf_counter() - t0
    while b.status not in ("completed", "failed", "cancelled"):
        time.sleep(0.5)
        b = client.batches.retrieve(b.id)
    total = time.perf_counter() - t0
    counts = b.request_counts
    return {"submit_s": submitted, "total_s": total, "status": b.status,
            "completed": counts.completed if counts else 0,
            "rate": items / (total - submitted)}


def submit_only(items: int) -> str:
    """Upload + create of an ``items``-line file (the batch is cancelled right after)."""
    work = Path(tempfile.mkdtemp(prefix="th-bench-submit-"))
    fake, fake_srv = start_in_thread()
    os.environ["FAKE_OPENAI_KEY"] = os.environ["FAKE_ANTHROPIC_KEY"] = "bench"
    config = work / "catalog.yaml"
    config.write_text(catalog_yaml(fake.url))
    port = free_port()
    import subprocess

    cmd = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=None)
    with (work / "procs.log").open("ab") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    wait_port(port)
    settings = Settings(_env_file=None, config=config, data_dir=work, temporal_enabled=True,
                        temporal_address=f"127.0.0.1:{port}", temporal_task_queue="submit",
                        require_api_key=False)
    gw = ThreadedServer(create_app(settings, load_catalog(settings)))
    gw.start()
    try:
        client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="bench", max_retries=0,
                               http_client=httpx.Client(trust_env=False, timeout=300))
        data = "".join(json.dumps({
            "custom_id": f"b{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "small", "messages": [{"role": "user", "content": f"item {i}"}]},
        }) + "\n" for i in range(items)).encode()
        t0 = time.perf_counter()
        f = client.files.create(file=("big.jsonl", io.BytesIO(data)), purpose="batch")
        t1 = time.perf_counter()
        b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
        t2 = time.perf_counter()
        client.batches.cancel(b.id)
        return (f"{items}-line file ({len(data) / 1e6:.1f} MB): upload {t1 - t0:.2f} s, "
                f"create {t2 - t1:.2f} s, total {t2 - t0:.2f} s")
    finally:
        gw.stop()
        kill(server)
        fake_srv.stop()


def main(items: int, sync_n: int, layouts: list[int]) -> str:
    work = Path(tempfile.mkdtemp(prefix="th-bench-batch-"))
    fake, fake_srv = start_in_thread()
    fake.set_default(delay_ms=50)
    os.environ["FAKE_OPENAI_KEY"] = os.environ["FAKE_ANTHROPIC_KEY"] = "bench"
    config = work / "catalog.yaml"
    config.write_text(catalog_yaml(fake.url))
    log = work / "procs.log"
    port = free_port()
    import subprocess

    cmd = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=None)
    with log.open("ab") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    wait_port(port)
    queue = f"bench-{port}"
    address = f"127.0.0.1:{port}"
    worker = start_worker(config=config, data_dir=work, address=address, queue=queue, log=log,
                          extra_env={"TOKENHUB_LOG_LEVEL": "ERROR"})
    rows = []

    def gateway(group: int) -> ThreadedServer:
        settings = Settings(_env_file=None, config=config, data_dir=work,
                            temporal_enabled=True, temporal_address=address,
                            temporal_task_queue=queue, require_api_key=False,
                            rate_limit_rps=1_000_000, rate_limit_burst=1_000_000,
                            batch_max_concurrency=16, batch_group_size=group,
                            batch_items_per_run=5000 if group > 1 else 500)
        gw = ThreadedServer(create_app(settings, load_catalog(settings)))
        gw.start()
        return gw

    gw = gateway(1)
    try:
        time.sleep(2)
        _sync_rate(gw.url, 50)  # warm-up
        cpu0 = (_tree_cpu(worker.pid), _tree_cpu(server.pid))
        sync = _sync_rate(gw.url, sync_n)
        cpu1 = (_tree_cpu(worker.pid), _tree_cpu(server.pid))
        per = [(cpu1[i] - cpu0[i]) / sync_n * 1000 for i in (0, 1)]
        rows.append(f"| synchronous `/v1/chat`, c=16 | {sync_n} | {sync:.1f} | "
                    f"{per[0]:.1f} | {per[1]:.1f} | — |")
        print(rows[-1], file=sys.stderr)
        for group in layouts:
            if group != 1:
                gw.stop()
                gw = gateway(group)
            before = (_tree_cpu(worker.pid), _tree_cpu(server.pid))
            res = _batch(gw.url, items)
            after = (_tree_cpu(worker.pid), _tree_cpu(server.pid))
            per_b = [(after[i] - before[i]) / items * 1000 for i in (0, 1)]
            name = ("one child workflow per item" if group == 1
                    else f"grouped, {group} items per chunk workflow")
            rows.append(f"| batch, {name}, max_concurrency 16 | {items} | {res['rate']:.1f} | "
                        f"{per_b[0]:.1f} | {per_b[1]:.1f} | {res['submit_s']:.2f} |")
            print(rows[-1], res["status"], res["completed"], file=sys.stderr)
        rows.append(f"\nworker peak RSS {_rss_mb(worker.pid):.0f} MB")
        text = log.read_text(errors="replace").lower()
        warned = sum(1 for ln in text.splitlines() if "warn" in ln and any(
            k in ln for k in ("history size", "history length", "historysize", "history_size")))
        rows.append(f"history-size warnings in the dev server / worker logs: {warned}")
    finally:
        gw.stop()
        kill(worker)
        kill(server)
        fake_srv.stop()
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--sync", type=int, default=400)
    parser.add_argument("--layouts", default="1,25", help="group sizes (1: child per item)")
    parser.add_argument("--out", default="batches.md", help="file under bench/results/")
    parser.add_argument("--submit-only", type=int, default=0,
                        help="only time upload + create of a file of this many lines")
    args = parser.parse_args()
    if args.submit_only:
        print(submit_only(args.submit_only))
        raise SystemExit(0)
    table = main(args.items, args.sync, [int(x) for x in args.layouts.split(",")])
    out = Path(__file__).parent / "results" / args.out
    out.write_text(
        f"# Batch throughput vs the synchronous workflow path ({datetime.now(UTC):%Y-%m-%d})\n\n"
        "Fake provider 50 ms per answer; tuned dev server, one `tokenhub worker`, the gateway, "
        "the fake provider and the client in one process; all on one shared 2-core box (other "
        "work ran too: provisional).\n\n"
        "| path | items | items/s | worker CPU ms/item | dev server CPU ms/item | "
        "upload+create s |\n| --- | --- | --- | --- | --- | --- |\n"
        f"{table}\n")
    print(out.read_text())
