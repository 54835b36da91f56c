"""Durable streams under faults: a worker killed mid-stream, Temporal killed before one."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from shared.config import load_catalog
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.integration.procs import kill, start_devserver, start_worker
from tests.integration.test_durable_streams import ANSWER, MSG, chunks_of, parse_sse, text_of
from tests.support.server import ThreadedServer, free_port

pytestmark = pytest.mark.temporal


async def test_worker_killed_mid_stream_the_answer_continues_without_repeats(
        temporal_env: WorkflowEnvironment, fake: FakeProvider, tmp_path: Path,
        config_file: Path) -> None:
    """The call runs on the shared queue (relay by subscription); SIGKILL its worker: the
    call is retried on the next worker after its heartbeat timeout, continuing the text
    the log holds. The client sees no event during that gap, then the rest."""
    address = temporal_address(temporal_env)
    settings = settings_for(tmp_path, config_file, address, temporal_embedded_worker=False,
                            temporal_stream_relay="subscribe",
                            temporal_stream_heartbeat_timeout_s=1.5)
    queue, log = settings.temporal_task_queue, tmp_path / "worker.log"
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address, queue=queue,
                          log=log)
    fake.set_default(content=ANSWER, chunks=40, gap_ms=60)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    rid = f"req-{uuid.uuid4().hex}"
    try:
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=25) as c:
            body = {"request": {"messages": MSG, "stream": True, "model_hint": "small"}}
            text: list[str] = []
            async with c.stream("POST", "/v1/chat", json=body,
                                headers={"X-Request-ID": rid}) as r:
                assert r.headers["x-tokenhub-executor"] == "temporal"
                seen, killed = 0, False
                async for piece in r.aiter_text():
                    text.append(piece)
                    seen += piece.count("data: ")
                    if seen >= 8 and not killed:
                        killed = True
                        kill(worker)
                        worker = start_worker(config=config_file, data_dir=tmp_path,
                                              address=address, queue=queue, log=log)
        events = parse_sse("".join(text))
        if text_of(events) != ANSWER:
            hist = [e.event_type async for e in
                    temporal_env.client.get_workflow_handle(rid).fetch_history_events()]
            raise AssertionError(f"{hist} {fake.calls('small-up')} {text_of(events)!r}")
        ids = [e["id"] for e in events if "id" in e and e.get("data") != "[DONE]"]
        assert ids == sorted(set(ids))  # no offset twice
        calls = fake.calls("small-up")
        assert len(calls) == 2 and calls[1].get("prefix")  # continued, not restarted
        assert chunks_of(events)[-1] == "[DONE]"
    finally:
        kill(worker)
        srv.stop()


async def test_temporal_killed_before_a_stream_it_is_served_locally_at_once(
        fake: FakeProvider, tmp_path: Path, config_file: Path) -> None:
    port = free_port()
    log = tmp_path / "procs.log"
    server = start_devserver(port, tmp_path / "temporal.db", log)
    settings = settings_for(tmp_path, config_file, f"127.0.0.1:{port}",
                            temporal_start_timeout_s=1.0)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    try:
        kill(server)
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=30) as c:
            body = {"model": "small", "messages": MSG, "stream": True}
            started = time.perf_counter()
            for _ in range(3):
                async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                    assert r.status_code == 200
                    assert r.headers["x-tokenhub-executor"] == "local"
                    events = parse_sse("".join([t async for t in r.aiter_text()]))
                assert text_of(events) == "[small-up] stream me durably"
                assert chunks_of(events)[-1] == "[DONE]"
            assert time.perf_counter() - started < 10  # the circuit opens: no more waits
    finally:
        srv.stop()
        kill(server)
