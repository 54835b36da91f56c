"""Durable streams under faults: a worker or the client's gateway killed mid-stream, Temporal
killed before one."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from shared.config import load_catalog
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.integration.procs import kill, start_devserver, start_gateway, start_worker
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


def _content_ids(events: list[dict[str, object]]) -> list[int]:
    """The offsets of the events that carry a delta (the end's frames share one offset)."""
    out = []
    for e in events:
        data = e.get("data")
        if "id" in e and isinstance(data, str) and data != "[DONE]" and \
                json.loads(data).get("choices"):
            out.append(int(str(e["id"])))
    return out


async def test_gateway_killed_mid_stream_a_new_gateway_serves_the_rest(
        temporal_env: WorkflowEnvironment, fake: FakeProvider, tmp_path: Path,
        config_file: Path) -> None:
    """The client's gateway is a real process, its stream call on the gateway's own task
    queue; SIGKILL it mid-answer. The call's heartbeat times out, its retry finds no one on
    that queue (schedule-to-start), so it moves to the shared queue's worker, which
    re-reads the log and continues the answer. The client, cut off, resumes from another
    gateway with its Last-Event-ID and gets exactly the rest: every delta it was sent was
    in the log first, so no text is lost or repeated at the seam."""
    address = temporal_address(temporal_env)
    queue, log = f"tq-{uuid.uuid4().hex[:10]}", tmp_path / "procs.log"
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address, queue=queue,
                          log=log)
    port = free_port()
    gateway = start_gateway(config=config_file, data_dir=tmp_path, address=address,
                            queue=queue, port=port, log=log, extra_env={
                                "TOKENHUB_TEMPORAL_STREAM_HEARTBEAT_TIMEOUT_S": "1.5"})
    fake.set_default(content=ANSWER, chunks=40, gap_ms=50)
    rid = f"req-{uuid.uuid4().hex}"
    other: ThreadedServer | None = None
    try:
        got = ""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False,
                                     timeout=30) as c:
            body = {"request": {"messages": MSG, "stream": True, "model_hint": "small"}}
            with contextlib.suppress(httpx.TransportError):  # the gateway dies under us
                async with c.stream("POST", "/v1/chat", json=body,
                                    headers={"X-Request-ID": rid}) as r:
                    assert r.status_code == 200
                    assert r.headers["x-tokenhub-executor"] == "temporal"
                    async for piece in r.aiter_text():
                        got += piece
                        if got.count("data: ") >= 8 and gateway.poll() is None:
                            kill(gateway)
        assert gateway.poll() is not None, "the stream ended before the gateway was killed"
        first = parse_sse(got[:got.rfind("\n\n") + 2])  # whole events only
        seen = _content_ids(first)
        assert seen and "[DONE]" not in got  # cut mid-answer
        (tmp_path / "b").mkdir()
        settings = settings_for(tmp_path / "b", config_file, address, temporal_task_queue=queue,
                                temporal_embedded_worker=False)
        other = ThreadedServer(create_app(settings, load_catalog(settings)))
        other.start()
        async with httpx.AsyncClient(base_url=other.url, trust_env=False, timeout=60) as c:
            r = await c.get(f"/v1/runs/{rid}/stream", headers={"Last-Event-ID": str(seen[-1])})
            assert r.status_code == 200, r.text
            rest = parse_sse(r.text)
        ids = seen + _content_ids(rest)
        assert ids == list(range(len(ids)))  # every offset once, none skipped
        if text_of(first) + text_of(rest) != ANSWER:
            raise AssertionError(f"{text_of(first)!r} + {text_of(rest)!r}; "
                                 f"calls {fake.calls('small-up')}")
        assert chunks_of(rest)[-1] == "[DONE]"
        handle = temporal_env.client.get_workflow_handle(rid)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        result = await handle.result()
        assert result["response"]["message"]["content"] == ANSWER
        calls = fake.calls("small-up")
        assert len(calls) == 2 and calls[1].get("prefix")  # continued, not restarted
        assert ANSWER.startswith(calls[1]["prefix"])
        history = [e async for e in handle.fetch_history_events()]
        queues = [e.activity_task_scheduled_event_attributes.task_queue.name for e in history
                  if e.HasField("activity_task_scheduled_event_attributes")]
        assert "-relay-" in queues[0] and queues[-1] == queue  # moved to the shared queue
    finally:
        kill(gateway)
        kill(worker)
        if other is not None:
            other.stop()


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
