"""Faults on the workflow path: a worker killed mid-plan, Temporal killed under traffic."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.http_server import uvicorn_options
from shared.config import load_catalog
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.integration.procs import kill, start_devserver, start_worker
from tests.support.server import ThreadedServer, free_port

pytestmark = pytest.mark.temporal


async def _wait_for(predicate: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_worker_killed_mid_plan_the_run_completes_without_repeats(
        temporal_env: WorkflowEnvironment, fake: FakeProvider, tmp_path: Path,
        config_file: Path) -> None:
    address = temporal_address(temporal_env)
    settings = settings_for(tmp_path, config_file, address, temporal_embedded_worker=False)
    queue = settings.temporal_task_queue
    log = tmp_path / "worker.log"
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address, queue=queue,
                          log=log)
    fake.set_default(delay_ms=600)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    try:
        body = {"request": {"messages": [{"role": "user", "content": "plan a launch"}]},
                "orchestration": {"mode": "adversarial", "iterations": 2}}
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=90) as c:
            pending = asyncio.create_task(c.post("/v1/plan", json=body))
            # kill the worker after two calls completed, while the third is in flight
            await _wait_for(lambda: sum(x["completed"] for x in fake.calls()) >= 2, 30)
            await _wait_for(lambda: len(fake.calls()) >= 3, 10)
            kill(worker)
            worker = start_worker(config=config_file, data_dir=tmp_path, address=address,
                                  queue=queue, log=log)
            r = await pending
        assert r.status_code == 200, r.text + log.read_text()[-2000:]
        assert r.headers["x-tokenhub-executor"] == "temporal"
        assert len(r.json()["rounds"]) == 2
        completed = Counter((c["model"], json.dumps(c["messages"], sort_keys=True))
                            for c in fake.calls() if c["completed"])
        assert sum(completed.values()) == 5  # plan + 2 × (critique + refine), once each
        assert max(completed.values()) == 1  # no completed call repeated
    finally:
        kill(worker)
        srv.stop()


async def test_temporal_killed_then_back(fake: FakeProvider, tmp_path: Path,
                                         config_file: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    db = tmp_path / "temporal.db"
    log = tmp_path / "procs.log"
    server = start_devserver(port, db, log)
    settings = settings_for(tmp_path, config_file, address, temporal_embedded_worker=False,
                            temporal_start_timeout_s=1.0, temporal_circuit_cooldown_s=1.0)
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address,
                          queue=settings.temporal_task_queue, log=log)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    body = {"request": {"messages": [{"role": "user", "content": "hi"}]}}
    try:
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=30) as c:
            await _eventually_executor(c, body, "temporal", 30)
            kill(server)
            started = time.perf_counter()
            executors = []
            for _ in range(6):
                r = await c.post("/v1/chat", json=body)
                assert r.status_code == 200, r.text
                executors.append(r.headers["x-tokenhub-executor"])
                if len(executors) == 1:
                    first_local_s = time.perf_counter() - started
            assert executors == ["local"] * 6
            assert first_local_s < 3.0
            server = start_devserver(port, db, log)
            await _eventually_executor(c, body, "temporal", 45)
            metrics = (await c.get("/metrics")).text
        locals_served = _metric(metrics, 'tokenhub_executor_total{executor="local",kind="chat"}')
        assert locals_served >= 6  # (more if the first probes after the restart failed)
        assert _metric(metrics, "tokenhub_temporal_fallback_total") == locals_served
    finally:
        srv.stop()
        kill(worker)
        kill(server)


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} missing")


async def _eventually_executor(c: httpx.AsyncClient, body: object, executor: str,
                               timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        r = await c.post("/v1/chat", json=body)
        assert r.status_code == 200, r.text
        if r.headers["x-tokenhub-executor"] == executor:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {r.headers['x-tokenhub-executor']}")
        await asyncio.sleep(0.3)
