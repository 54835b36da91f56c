"""Durable streams against the real dev server: relay, failover mid-answer, resume, cancel,
parity of the wire format with the local path."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from shared.config import load_catalog
from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal
MSG = [{"role": "user", "content": "stream me durably"}]
ANSWER = "The quick brown fox jumps over the lazy dog, then naps in the warm sun. " * 3


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Each SSE event as {"id", "data", "comment"}."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        ev: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comment"] = line[1:].strip()
            elif line.startswith("id: "):
                ev["id"] = int(line[4:])
            elif line.startswith("data: "):
                ev["data"] = line[6:]
        events.append(ev)
    return events


def chunks_of(events: list[dict[str, Any]]) -> list[Any]:
    """The data events, normalised for comparison across runs (ids, timestamps)."""
    out = []
    for ev in events:
        if "data" not in ev:
            continue
        if ev["data"] == "[DONE]":
            out.append("[DONE]")
            continue
        data = json.loads(ev["data"])
        data.pop("id", None)
        data.pop("created", None)
        out.append(data)
    return out


def text_of(events: list[dict[str, Any]]) -> str:
    out = []
    for ev in events:
        if "data" in ev and ev["data"] != "[DONE]":
            data = json.loads(ev["data"])
            for c in data.get("choices") or []:
                out.append(c["delta"].get("content") or "")
    return "".join(out)


async def _stream(c: httpx.AsyncClient, rid: str, **request: Any) -> tuple[int, str, httpx.Headers]:
    body = {"request": {"messages": MSG, "stream": True, **request}}
    async with c.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
        return r.status_code, "".join([t async for t in r.aiter_text()]), r.headers


@pytest.fixture
def client_of() -> Any:
    def make(srv: ThreadedServer) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=60)
    return make


async def test_a_stream_runs_as_a_workflow_with_event_ids(
        temporal_gateway: ThreadedServer, temporal_env: WorkflowEnvironment,
        fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=8)
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        status, text, headers = await _stream(c, rid, model_hint="small")
    assert status == 200, text
    assert headers["x-tokenhub-executor"] == "temporal"
    assert headers["x-tokenhub-model"] == "small"
    events = parse_sse(text)
    assert text_of(events) == ANSWER
    ids = [e["id"] for e in events if "id" in e]
    assert ids == sorted(ids) and ids[0] == 0
    assert chunks_of(events)[-1] == "[DONE]"
    assert any(e.get("comment", "").startswith("tokenhub finished-by=small") for e in events)
    desc = await temporal_env.client.get_workflow_handle(rid).describe()
    assert desc.workflow_type == "ChatWorkflow"
    sa = {k.name: v for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
    assert sa["TokenHubKind"] == "stream" and sa["TokenHubStatus"] == "ok"
    result = await temporal_env.client.get_workflow_handle(rid).result()
    assert result["response"]["message"]["content"] == ANSWER
    [row] = wait_rows(temporal_gateway, rid)
    assert (row["kind"], row["status"], row["executor"]) == ("stream", "ok", "temporal")
    assert row["output_tokens"] > 0 and row["cost_usd"] > 0


async def test_a_provider_dying_mid_stream_is_continued_by_the_next_model(
        temporal_gateway: ThreadedServer, fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=10)
    fake.script("small-up", [{"kind": "cut_stream", "after_chunks": 4}])
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        status, text, _ = await _stream(c, rid, model_hint="small")
    assert status == 200, text
    events = parse_sse(text)
    assert text_of(events) == ANSWER  # one uninterrupted answer
    assert "error" not in text
    finisher = [e["comment"] for e in events if "comment" in e][-1]
    assert "finished-by=small" not in finisher
    calls = fake.calls()
    [second] = [x for x in calls if x.get("prefix")]
    assert ANSWER.startswith(second["prefix"]) and second["model"] != "small-up"
    [row] = wait_rows(temporal_gateway, rid)
    assert [a["outcome"] for a in row["attempts"]] == ["transient", "ok"]
    assert row["attempts"][0]["model"] == "small"
    assert row["attempts"][0]["cost_usd"] > 0  # the cut call is charged for what it produced
    assert row["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in row["attempts"]))


async def test_nothing_left_to_continue_ends_with_the_in_band_error(
        temporal_gateway: ThreadedServer, fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=10)
    fake.script("*", [{"kind": "cut_stream", "after_chunks": 3}] * 8)
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        status, text, _ = await _stream(c, rid, model_hint="small")
    assert status == 200
    events = parse_sse(text)
    assert "upstream_stream_error" in events[-1]["data"]
    [row] = wait_rows(temporal_gateway, rid)
    assert (row["status"], row["http_status"]) == ("error", 200)


async def test_failure_before_the_first_delta_is_a_502(
        temporal_gateway: ThreadedServer, fake: FakeProvider, client_of: Any) -> None:
    fake.script("*", [{"status": 401}] * 8)
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        status, text, headers = await _stream(c, rid)
    assert status == 502, text
    assert headers["x-tokenhub-executor"] == "temporal"
    [row] = wait_rows(temporal_gateway, rid)
    assert (row["status"], row["http_status"]) == ("error", 502)


async def test_resume_replays_after_last_event_id_and_checks_its_input(
        temporal_gateway: ThreadedServer, fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=8)
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        _, text, _ = await _stream(c, rid, model_hint="small")
        events = parse_sse(text)
        ids = [e["id"] for e in events if "id" in e]
        r = await c.get(f"/v1/runs/{rid}/stream", headers={"Last-Event-ID": "3"})
        assert r.status_code == 200
        tail = parse_sse(r.text)
        assert text_of(events[:4]) + text_of(tail) == ANSWER
        assert next(e["id"] for e in tail if "id" in e) == 4
        assert chunks_of(tail)[-1] == "[DONE]"
        again = await c.get(f"/v1/runs/{rid}/stream?after=0")
        assert text_of(parse_sse(again.text)) == ANSWER[len(text_of(events[:1])):]
        assert (await c.get(f"/v1/runs/{rid}/stream",
                            headers={"Last-Event-ID": str(max(ids))})).status_code == 416
        assert (await c.get(f"/v1/runs/{rid}/stream",
                            headers={"Last-Event-ID": "x"})).status_code == 400
        assert (await c.get("/v1/runs/req-nope/stream")).status_code == 404


async def test_a_client_hang_up_does_not_stop_the_run_unless_it_asked(
        temporal_gateway: ThreadedServer, temporal_env: WorkflowEnvironment,
        fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=40, gap_ms=50)
    kept, cancelled = f"req-{uuid.uuid4().hex}", f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        for rid, cancel in ((kept, "false"), (cancelled, "true")):
            body = {"request": {"messages": MSG, "stream": True}}
            async with c.stream("POST", "/v1/chat", json=body, headers={
                    "X-Request-ID": rid, "X-TokenHub-Cancel-On-Disconnect": cancel}) as r:
                async for _ in r.aiter_lines():
                    break  # hang up after the first line
    handle = temporal_env.client.get_workflow_handle(cancelled)
    for _ in range(100):
        if (await handle.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    result = await temporal_env.client.get_workflow_handle(kept).result()
    assert result["response"]["message"]["content"] == ANSWER
    [row] = wait_rows(temporal_gateway, cancelled)
    assert (row["status"], row["error_class"]) == ("error", "cancelled")
    assert row["output_tokens"] > 0  # charged on what was produced


async def test_the_cancel_endpoint_cancels_a_running_stream(
        temporal_gateway: ThreadedServer, temporal_env: WorkflowEnvironment,
        fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=40, gap_ms=50)
    rid = f"req-{uuid.uuid4().hex}"
    async with client_of(temporal_gateway) as c:
        body = {"request": {"messages": MSG, "stream": True}}
        async with c.stream("POST", "/v1/chat", json=body, headers={"X-Request-ID": rid}) as r:
            lines = aiter(r.aiter_lines())
            await anext(lines)
            assert (await c.post(f"/v1/runs/{rid}/cancel")).status_code == 202
            rest = "\n".join([line async for line in lines])
        assert "upstream_stream_error" in rest and "cancelled" in rest
        assert (await c.post(f"/v1/runs/{rid}/cancel")).status_code == 409
        assert (await c.post("/v1/runs/req-nope/cancel")).status_code == 404
    desc = await temporal_env.client.get_workflow_handle(rid).describe()
    assert desc.status == WorkflowExecutionStatus.CANCELED


# The target: a cancelled run stops reading its upstream within 1 s. Shown on the fake
# upstream's own clock: it streams one event every 50 ms, so the events it wrote after the
# cancel was asked for, until it saw the connection close, are at most 1 s worth of them.
CANCEL_GAP_MS = 50
CANCEL_BOUND_EVENTS = 1000 // CANCEL_GAP_MS


@pytest.mark.parametrize("how", ["endpoint", "disconnect"])
async def test_a_cancelled_stream_stops_reading_upstream_within_a_second(
        how: str, temporal_gateway: ThreadedServer, temporal_env: WorkflowEnvironment,
        fake: FakeProvider, client_of: Any) -> None:
    fake.set_default(content=ANSWER, chunks=200, gap_ms=CANCEL_GAP_MS)  # 10 s uncancelled
    rid = f"req-{uuid.uuid4().hex}"
    headers = {"X-Request-ID": rid}
    if how == "disconnect":
        headers["X-TokenHub-Cancel-On-Disconnect"] = "true"
    async with client_of(temporal_gateway) as c:
        body = {"request": {"messages": MSG, "stream": True, "model_hint": "small"}}
        async with c.stream("POST", "/v1/chat", json=body, headers=headers) as r:
            seen = 0
            async for line in r.aiter_lines():
                seen += line.startswith("data: ")
                if seen >= 5:
                    break
            [call] = fake.calls("small-up")
            at_cancel = call["sent"]
            if how == "endpoint":
                assert (await c.post(f"/v1/runs/{rid}/cancel")).status_code == 202
        # leaving the block hangs up (the disconnect case cancels the run here)
    handle = temporal_env.client.get_workflow_handle(rid)
    for _ in range(200):
        [call] = fake.calls("small-up")
        if "closed_after_events" in call and \
                (await handle.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert not call["completed"] and "closed_after_events" in call, call
    after = call["closed_after_events"] - at_cancel
    print(f"cancel by {how}: the upstream wrote {after} event(s) after it")  # pytest -s
    assert 0 <= after <= CANCEL_BOUND_EVENTS, (
        f"{after} events written after the cancel (bound {CANCEL_BOUND_EVENTS})")
    [row] = wait_rows(temporal_gateway, rid)
    assert (row["status"], row["error_class"]) == ("error", "cancelled")


async def test_both_executors_send_the_same_chunks(
        temporal_gateway: ThreadedServer, fake: FakeProvider, tmp_path: Path,
        config_file: Path, temporal_env: WorkflowEnvironment, client_of: Any) -> None:
    local_settings = settings_for(tmp_path / "local", config_file,
                                  temporal_address(temporal_env), temporal_enabled=False)
    local = ThreadedServer(create_app(local_settings, load_catalog(local_settings)))
    local.start()
    try:
        seqs: dict[str, list[Any]] = {}
        sdk: dict[str, list[Any]] = {}
        for name, srv in (("temporal", temporal_gateway), ("local", local)):
            for model in ("small", "claude"):
                async with client_of(srv) as c:
                    body = {"model": model, "messages": MSG, "stream": True,
                            "stream_options": {"include_usage": True}}
                    async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                        assert r.headers["x-tokenhub-executor"] == name
                        seqs[f"{name}-{model}"] = chunks_of(parse_sse(
                            "".join([t async for t in r.aiter_text()])))
            with openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0,
                               http_client=httpx.Client(trust_env=False)) as oc:
                sdk[f"{name}-sync"] = [
                    ch.model_dump(exclude={"id", "created"}) for ch in oc.chat.completions.create(
                        model="small", messages=MSG, stream=True,  # type: ignore[arg-type]
                        stream_options={"include_usage": True})]
            async with openai.AsyncOpenAI(base_url=f"{srv.url}/v1", api_key="unused",
                                          max_retries=0,
                                          http_client=httpx.AsyncClient(trust_env=False)) as ac:
                stream = await ac.chat.completions.create(
                    model="claude", messages=MSG, stream=True)  # type: ignore[arg-type]
                sdk[f"{name}-async"] = [ch.model_dump(exclude={"id", "created"})
                                        async for ch in stream]
        for model in ("small", "claude"):
            assert seqs[f"temporal-{model}"] == seqs[f"local-{model}"]
        assert sdk["temporal-sync"] == sdk["local-sync"]
        assert sdk["temporal-async"] == sdk["local-async"]
    finally:
        local.stop()
