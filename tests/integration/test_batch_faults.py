"""A 200-item batch through a worker SIGKILLed and restarted, a gateway restarted and the
Temporal dev server killed and restarted (on its SQLite file): the batch completes, every
item exactly once in the output file, no item's completed provider call repeated."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.app import create_app
from api.http_server import uvicorn_options
from shared.config import Settings, load_catalog
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for
from tests.integration.procs import kill, start_devserver, start_worker
from tests.support.server import ThreadedServer, free_port

pytestmark = pytest.mark.temporal
ITEMS = 200


def _gateway(settings: Settings) -> ThreadedServer:
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    return srv


def _sdk(srv: ThreadedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0,
                         http_client=httpx.Client(trust_env=False, timeout=60))


async def _until(predicate: Any, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.1)


def _done(fake: FakeProvider) -> int:
    return sum(1 for c in fake.calls() if c["completed"])


async def test_a_batch_survives_worker_gateway_and_temporal_restarts(
        fake: FakeProvider, tmp_path: Path, config_file: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    db, log = tmp_path / "temporal.db", tmp_path / "procs.log"
    server = start_devserver(port, db, log)
    settings = settings_for(tmp_path, config_file, address, temporal_embedded_worker=False,
                            temporal_start_timeout_s=2.0, batch_max_concurrency=8,
                            batch_items_per_run=60)
    queue = settings.temporal_task_queue
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address, queue=queue,
                          log=log)
    fake.set_default(delay_ms=60)
    srv = _gateway(settings)
    try:
        lines = "".join(json.dumps({
            "custom_id": f"item-{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "small", "messages": [{"role": "user", "content": f"item {i}"}]},
        }) + "\n" for i in range(ITEMS)).encode()
        client = _sdk(srv)
        f = client.files.create(file=("faults.jsonl", io.BytesIO(lines)), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        await _until(lambda: _done(fake) >= 40, 120)
        # SIGKILL mid-batch, with 8 calls in flight; none completing at that instant (a kill
        # in the milliseconds between a provider's answer and its record repeats that call:
        # at-least-once, README "Batches")
        fake.set_default(delay_ms=3000)
        await asyncio.sleep(0.5)
        kill(worker)
        fake.set_default(delay_ms=60)
        worker = start_worker(config=config_file, data_dir=tmp_path, address=address,
                              queue=queue, log=log)
        await _until(lambda: _done(fake) >= 90, 120)
        srv.stop()  # the gateway goes away and comes back (the batch does not need it)
        srv = _gateway(settings)
        client = _sdk(srv)
        await _until(lambda: _done(fake) >= 130, 120)
        kill(server)  # Temporal SIGKILLed; back on the same SQLite file
        await asyncio.sleep(0.5)
        server = start_devserver(port, db, log)
        for _ in range(1800):  # bounded, not timed
            b = client.batches.retrieve(batch.id)
            if b.status in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(0.1)
        assert b.status == "completed", (b, log.read_text()[-3000:])
        assert b.request_counts is not None
        assert (b.request_counts.completed, b.request_counts.failed) == (ITEMS, 0)
        assert b.output_file_id is not None
        out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
        ids = Counter(o["custom_id"] for o in out)
        assert len(ids) == ITEMS and max(ids.values()) == 1  # every item exactly once
        completed = Counter(c["messages"][-1]["content"] for c in fake.calls()
                            if c["completed"])
        assert len(completed) == ITEMS
        assert max(completed.values()) == 1, completed.most_common(3)  # none repeated
    finally:
        srv.stop()
        kill(worker)
        kill(server)
