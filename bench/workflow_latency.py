"""Workflow-path latency by configuration (issue: pick Temporal options by measurement).

Starts Temporal dev servers (tuned dynamic config vs defaults), the fake provider and
gateways on 127.0.0.1; sends N sequential /v1/chat requests per configuration (c=1).
    python -m bench.workflow_latency [--requests 200]  →  bench/results/workflow-latency.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from engine import devserver
from shared.config import Settings, load_catalog
from tests.conftest import catalog_yaml
from tests.fake_provider import start_in_thread
from tests.integration.procs import kill, start_worker, wait_port
from tests.support.server import ThreadedServer, free_port


def _devserver(port: int, tuned: bool, log: Path) -> subprocess.Popen[bytes]:
    cmd = devserver.command(ip="127.0.0.1", port=port, ui_port=None, db_file=None)
    if not tuned:  # drop our dynamic config, keep the search attributes
        keep, skip = [], False
        for arg in cmd:
            if skip:
                skip = False
                continue
            if arg == "--dynamic-config-value":
                skip = True
                continue
            keep.append(arg)
        cmd = keep
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    wait_port(port)
    return proc


def _measure(url: str, n: int) -> dict[str, Any]:
    body = {"request": {"messages": [{"role": "user", "content": "hi"}], "model_hint": "small"}}
    lat, executors = [], set()
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as c:
        for _ in range(20):
            c.post("/v1/chat", json=body)
        for _ in range(n):
            t0 = time.perf_counter()
            r = c.post("/v1/chat", json=body)
            lat.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            executors.add(r.headers["x-tokenhub-executor"])
    lat.sort()
    return {"p50": statistics.median(lat), "p99": lat[max(0, int(n * 0.99) - 1)],
            "executor": ",".join(sorted(executors))}


def main(n: int) -> str:
    work = Path(tempfile.mkdtemp(prefix="th-bench-"))
    fake, fake_srv = start_in_thread()
    os.environ["FAKE_OPENAI_KEY"] = os.environ["FAKE_ANTHROPIC_KEY"] = "bench"
    config = work / "catalog.yaml"
    config.write_text(catalog_yaml(fake.url))
    log = work / "procs.log"
    rows: list[str] = []
    configs = [  # name, tuned server, temporal, embedded worker (eager), local activities
        ("local path (TOKENHUB_TEMPORAL_ENABLED=false)", True, False, False, "none"),
        ("workflow: separate worker, default dev-server config, regular activity", False,
         True, False, "none"),
        ("workflow: separate worker, tuned dev server, regular activity", True, True, False,
         "none"),
        ("workflow: separate worker, tuned, call as local activity (default for chat)", True,
         True, False, "chat"),
        ("workflow: embedded worker + eager start, tuned, local activity", True, True, True,
         "chat"),
    ]
    for name, tuned, temporal, embedded, local_acts in configs:
        port = free_port()
        server = _devserver(port, tuned, log) if temporal else None
        queue = f"bench-{port}"
        settings = Settings(_env_file=None, config=config, data_dir=work / name[:8],
                            temporal_enabled=temporal, temporal_address=f"127.0.0.1:{port}",
                            temporal_task_queue=queue, temporal_embedded_worker=embedded,
                            temporal_local_activities=local_acts, require_api_key=False,
                            rate_limit_rps=1_000_000, rate_limit_burst=1_000_000)
        worker = (start_worker(config=config, data_dir=work, address=f"127.0.0.1:{port}",
                               queue=queue, log=log) if temporal and not embedded else None)
        gw = ThreadedServer(create_app(settings, load_catalog(settings)))
        gw.start()
        try:
            time.sleep(2 if worker else 0.5)
            r = _measure(gw.url, n)
            rows.append(f"| {name} | {r['p50']:.1f} | {r['p99']:.1f} | {r['executor']} |")
            print(rows[-1], file=sys.stderr)
        finally:
            gw.stop()
            if worker:
                kill(worker)
            if server:
                kill(server)
    fake_srv.stop()
    return "\n".join(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    table = main(args.requests)
    out = Path(__file__).parent / "results" / "workflow-latency.md"
    out.write_text(
        f"# Workflow-path latency by configuration ({datetime.now(UTC):%Y-%m-%d})\n\n"
        f"c=1, {args.requests} sequential `POST /v1/chat` after 20 warm-up requests; fake "
        "provider with 0 ms delay; everything on one 2-core box.\n\n"
        "| configuration | p50 ms | p99 ms | executor |\n| --- | --- | --- | --- |\n"
        f"{table}\n")
    print(out.read_text())
