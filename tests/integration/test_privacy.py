"""Privacy of runs (README): with payload keys, Temporal's history of chat, plan and
streamed runs holds no prompt or answer text — read back with a client that has no
codec — yet the gateway, the codec server and a gateway with rotated keys read every run."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.http_server import uvicorn_options
from engine.codec import ENCODING, KEY_ID, EncryptionCodec
from shared.config import load_catalog
from shared.security.payload_keys import new_key_entry, parse_payload_keys
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal
ADMIN = "privacy-admin-token-0123456789"
PROMPT = "zebra-prompt-4417 about my medical history"
ANSWER = "okapi-answer-9025 with private advice"


def _payloads(msg: Message) -> Iterator[Payload]:
    """Every Payload anywhere in a proto message (maps and repeated fields included)."""
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from _payloads(item)


def _raw(history: WorkflowHistory) -> bytes:
    return b"".join(e.SerializeToString() for e in history.events)


@pytest.fixture
def start_gateway(temporal_env: WorkflowEnvironment, tmp_path: Path,
                  config_file: Path) -> Iterator[Any]:
    servers: list[ThreadedServer] = []

    def start(keys: str, **overrides: Any) -> ThreadedServer:
        settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),
                                temporal_payload_keys=keys, admin_token=ADMIN, **overrides)
        srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                             **uvicorn_options(settings))
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


async def test_history_holds_no_prompt_or_answer(start_gateway: Any, fake: FakeProvider,
                                                 temporal_env: WorkflowEnvironment) -> None:
    entry = new_key_entry("k1")
    srv = start_gateway(entry, temporal_ui_url="http://ui.example:8233")
    for model in ("small-up", "medium-up", "claude-up", "large-up"):
        fake.script(model, [{"content": ANSWER}] * 6)
    messages = [{"role": "user", "content": PROMPT}]
    chat_id, plan_id = f"priv-chat-{uuid.uuid4().hex}", f"priv-plan-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=60) as c:
        chat = await c.post("/v1/chat", headers={"X-Request-ID": chat_id},
                            json={"request": {"messages": messages, "model_hint": "claude"}})
        plan = await c.post("/v1/plan", headers={"X-Request-ID": plan_id}, json={
            "request": {"messages": messages},
            "orchestration": {"mode": "vote", "voters": 2}})
        stream_id = f"priv-stream-{uuid.uuid4().hex}"
        stream = await c.post("/v1/chat", headers={"X-Request-ID": stream_id}, json={
            "request": {"messages": messages, "model_hint": "small", "stream": True}})
    assert stream.status_code == 200 and "okapi" in stream.text  # deltas reach the client
    assert stream.headers["x-tokenhub-executor"] == "temporal"
    assert chat.status_code == 200, chat.text
    assert plan.status_code == 200, plan.text
    assert chat.json()["executor"] == plan.json()["executor"] == "temporal"
    assert ANSWER in chat.json()["response"]["message"]["content"]  # the client reads it
    assert chat.headers["x-tokenhub-run-url"] == \
        f"http://ui.example:8233/namespaces/default/workflows/{chat_id}"

    codec = EncryptionCodec(parse_payload_keys(entry, source="test"))
    plain = temporal_env.client  # the test's own client: no codec
    for rid, kind in ((chat_id, "chat"), (plan_id, "plan"), (stream_id, "stream")):
        history = await plain.get_workflow_handle(rid).fetch_history()
        raw = _raw(history)
        for text in (PROMPT, ANSWER, "zebra", "okapi"):
            assert text.encode() not in raw, f"{text!r} in clear in {kind} history"
            assert base64.b64encode(text.encode()) not in raw
        payloads = list(_payloads(history.events[0])) + [
            p for e in history.events[1:] for p in _payloads(e)]
        sealed = [p for p in payloads if p.metadata.get("encoding") == ENCODING]
        assert sealed and {p.metadata[KEY_ID] for p in sealed} == {b"k1"}
        # the control: the same history, decrypted, does hold them (the check can fail)
        opened = b"".join(p.data for p in await codec.decode(sealed))
        assert PROMPT.encode() in opened and ANSWER.encode() in opened
        # search attributes stay clear (indexed) and hold ids, mode, status, cost only
        desc = await plain.get_workflow_handle(rid).describe()
        values = {p.key.name: p.value for p in desc.typed_search_attributes}
        assert values["TokenHubKind"] == kind and values["TokenHubStatus"] == "ok"
        assert not any(w in str(values) for w in ("zebra", "okapi", "medical"))
        # the run explains itself (decrypted for those who hold the key)
        started = history.events[0]
        meta = started.user_metadata
        assert meta.summary.metadata["encoding"] == ENCODING
        [summary] = await codec.decode([meta.summary])
        assert kind.encode() in summary.data and b"zebra" not in summary.data


async def test_runs_written_with_the_old_key_still_decode(
        start_gateway: Any, fake: FakeProvider, temporal_env: WorkflowEnvironment) -> None:
    old, new = new_key_entry("old"), new_key_entry("new")
    body = {"request": {"messages": [{"role": "user", "content": PROMPT}],
                        "model_hint": "small"}}
    rid = f"rot-{uuid.uuid4().hex}"
    first = start_gateway(old)
    async with httpx.AsyncClient(base_url=first.url, trust_env=False, timeout=60) as c:
        r1 = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json=body)
    assert r1.status_code == 200 and r1.json()["executor"] == "temporal"
    first.stop()
    rotated = start_gateway(f"{new},{old}")
    async with httpx.AsyncClient(base_url=rotated.url, trust_env=False, timeout=60) as c:
        # the repeat attaches to the closed run: its memo and result decode with "old"
        r2 = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json=body)
        assert r2.status_code == 200, r2.text
        assert r2.json()["response"] == r1.json()["response"]
        fresh = await c.post("/v1/chat", json=body)
        assert fresh.status_code == 200
        history = await temporal_env.client.get_workflow_handle(rid).fetch_history()
        [started_input] = history.events[0].workflow_execution_started_event_attributes \
            .input.payloads
        assert started_input.metadata[KEY_ID] == b"old"
        wire = {"payloads": [{
            "metadata": {k: base64.b64encode(v).decode()
                         for k, v in started_input.metadata.items()},
            "data": base64.b64encode(started_input.data).decode()}]}
        dec = await c.post("/codec/decode", json=wire,
                           headers={"Authorization": f"Bearer {ADMIN}"})
        assert dec.status_code == 200, dec.text
        assert PROMPT.encode() in base64.b64decode(dec.json()["payloads"][0]["data"])
    fresh_id = fresh.headers["x-request-id"]
    h2 = await temporal_env.client.get_workflow_handle(fresh_id).fetch_history()
    keys = {p.metadata.get(KEY_ID) for e in h2.events for p in _payloads(e)
            if p.metadata.get("encoding") == ENCODING}
    assert keys == {b"new"}
