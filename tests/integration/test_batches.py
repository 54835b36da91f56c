"""OpenAI-compatible batches against the real dev server, driven with the official SDK:
upload, create, retrieve, output and error files; bad lines fail alone; cancel; files that
cannot be a batch are 400s naming the line or limit."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import httpx
import openai
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal


def line(custom_id: str, url: str, body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def jsonl(lines: list[Any]) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def sdk(srv: ThreadedServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0,
                         http_client=httpx.Client(trust_env=False, timeout=60))


def wait_batch(client: openai.OpenAI, batch_id: str, statuses: set[str]) -> Any:
    for _ in range(600):  # bounded, not timed
        b = client.batches.retrieve(batch_id)
        if b.status in statuses:
            return b
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} stuck in {b.status}")


async def test_the_openai_sdk_round_trip(temporal_gateway: ThreadedServer,
                                   temporal_env: WorkflowEnvironment,
                                   fake: FakeProvider) -> None:
    msg = [{"role": "user", "content": "hello"}]
    lines = [line(f"c{i}", "/v1/chat/completions", {"model": "small", "messages": msg})
             for i in range(5)]
    lines += [
        line("native", "/v1/chat", {"request": {"messages": msg, "model_hint": "medium"}}),
        line("plan", "/v1/plan", {"request": {"messages": msg},
                                  "orchestration": {"mode": "planning"}}),
        "{not json",
        line("bad-url", "/v1/embeddings", {"input": "x"}),
        line("bad-body", "/v1/chat/completions", {"model": "small", "messages": []}),
    ]
    client = sdk(temporal_gateway)
    f = client.files.create(file=("requests.jsonl", io.BytesIO(jsonl(lines))),
                            purpose="batch")
    assert f.id.startswith("file-") and f.purpose == "batch" and f.bytes > 0
    assert client.files.retrieve(f.id).filename == "requests.jsonl"
    assert client.files.content(f.id).content == jsonl(lines)
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "t"})
    assert batch.request_counts is not None and batch.request_counts.total == 10
    done = wait_batch(client, batch.id, {"completed", "failed", "cancelled"})
    assert done.status == "completed", done
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (7, 3)
    assert done.metadata == {"job": "t"}
    assert done.output_file_id is not None and done.error_file_id is not None
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    by_id = {o["custom_id"]: o for o in out}
    assert sorted(by_id) == sorted([f"c{i}" for i in range(5)] + ["native", "plan"])
    c0 = by_id["c0"]
    assert c0["error"] is None and c0["response"]["status_code"] == 200
    assert c0["response"]["body"]["object"] == "chat.completion"
    assert c0["response"]["body"]["model"] == "small"
    assert by_id["native"]["response"]["body"]["negotiated_model"] == "medium"
    assert by_id["plan"]["response"]["body"]["mode"] == "planning"
    errors = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    assert [e["custom_id"] for e in errors] == [None, "bad-url", "bad-body"]
    assert "line 8" in errors[0]["error"]["message"]
    assert "unknown url" in errors[1]["error"]["message"]
    assert errors[2]["response"]["status_code"] == 400
    assert errors[2]["response"]["body"]["error"]["type"] == "invalid_request"
    # every item is findable by its batch id and custom_id (default layout: its chunk)
    # (visibility is eventually consistent: the item may take a moment to be indexed)
    query = f"TokenHubBatchId = '{batch.id}' AND TokenHubCustomIds = 'c3'"
    for _ in range(100):
        found = [w async for w in temporal_env.client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert [w.workflow_type for w in found] == ["BatchChunkWorkflow"]
    assert len(fake.calls()) == 7  # one provider call per valid item, none repeated
    assert batch.id in [b.id for b in client.batches.list().data]
    assert client.files.delete(f.id).deleted


def test_cancel_stops_new_items(temporal_gateway: ThreadedServer,
                                fake: FakeProvider) -> None:
    fake.set_default(delay_ms=400)
    msg = [{"role": "user", "content": "slow"}]
    lines = [line(f"s{i}", "/v1/chat/completions", {"model": "small", "messages": msg})
             for i in range(40)]
    client = sdk(temporal_gateway)
    f = client.files.create(file=("slow.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    wait_batch(client, batch.id, {"in_progress"})
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    done = wait_batch(client, batch.id, {"cancelled", "completed"})
    assert done.status == "cancelled"
    counts = done.request_counts
    assert counts is not None and counts.completed < 40
    calls = len(fake.calls())
    time.sleep(1.0)
    assert len(fake.calls()) == calls  # nothing new after the cancel settled


@pytest.mark.parametrize(("data", "says"), [
    (b"", "empty"),
    (b"\n\n", "empty"),
    (b"hello world\n", "line 1 is not a JSON object"),
    (b'\n{"a": 1}\n\xff\xfe\n', "line 3 is not UTF-8"),
])
def test_files_that_cannot_be_a_batch_are_400(temporal_gateway: ThreadedServer,
                                              data: bytes, says: str) -> None:
    with httpx.Client(base_url=temporal_gateway.url, trust_env=False) as c:
        r = c.post("/v1/files", files={"file": ("x.jsonl", data)}, data={"purpose": "batch"})
    assert r.status_code == 400, r.text
    assert says in r.json()["error"]["message"]


async def test_one_child_per_item_continues_as_new_and_stores_each_item_once(
        temporal_env: WorkflowEnvironment, tmp_path: Any, config_file: Any,
        fake: FakeProvider) -> None:
    from api.app import create_app
    from shared.config import load_catalog
    from tests.integration.conftest import settings_for, temporal_address

    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),
                            batch_items_per_run=10, batch_max_concurrency=4,
                            batch_group_size=1)  # the other layout: a child run per item
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    try:
        msg = [{"role": "user", "content": "many"}]
        lines = [line(f"m{i}", "/v1/chat/completions", {"model": "small", "messages": msg})
                 for i in range(25)]
        client = sdk(srv)
        f = client.files.create(file=("m.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        done = await asyncio.to_thread(wait_batch, client, batch.id, {"completed"})
        assert done.request_counts is not None and done.request_counts.completed == 25
        desc = await temporal_env.client.get_workflow_handle(batch.id).describe()
        assert desc.run_id != desc.raw_description.workflow_execution_info.first_run_id
        assert done.output_file_id is not None
        out = client.files.content(done.output_file_id).text.splitlines()
        assert sorted(json.loads(x)["custom_id"] for x in out) == sorted(
            f"m{i}" for i in range(25))
        assert len(fake.calls()) == 25
        query = f"TokenHubBatchId = '{batch.id}' AND TokenHubCustomId = 'm7'"
        for _ in range(100):
            found = [w async for w in temporal_env.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert [w.workflow_type for w in found] == ["ChatWorkflow"]  # an ordinary run
    finally:
        srv.stop()


async def test_budgets_apply_per_item(temporal_env: WorkflowEnvironment, tmp_path: Any,
                                      config_file: Any, fake: FakeProvider) -> None:
    """Each item is held on its key's monthly budget before it runs and charged its real
    cost after: a budget below one item's estimate fails every item (403 in the error
    file), a roomy one lets them all run and records what they cost."""
    from api.app import create_app
    from shared.config import load_catalog
    from shared.security.budgets import BudgetLedger
    from shared.store.db import create_engine, create_sessionmaker
    from tests.integration.conftest import settings_for, temporal_address

    admin = "batch-admin-token-0123456789"
    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),
                            require_api_key=True, admin_token=admin)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    try:
        keys = {}
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False,
                                     headers={"Authorization": f"Bearer {admin}"}) as c:
            for name, budget in (("poor", 0.00001), ("rich", 1.0)):
                r = await c.post("/admin/v1/apikeys", json={"name": name, "scopes": ["runs"],
                                                       "monthly_budget_usd": budget})
                keys[name] = (r.json()["token"], r.json()["key"]["id"])
        msg = [{"role": "user", "content": "count me"}]
        data = jsonl([line(f"b{i}", "/v1/chat/completions",
                           {"model": "small", "messages": msg}) for i in range(3)])
        results = {}
        for name, (token, _) in keys.items():
            client = openai.OpenAI(base_url=f"{srv.url}/v1", api_key=token, max_retries=0,
                                   http_client=httpx.Client(trust_env=False, timeout=60))
            f = client.files.create(file=("b.jsonl", io.BytesIO(data)), purpose="batch")
            b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
            results[name] = (client, await asyncio.to_thread(wait_batch, client, b.id,
                                                             {"completed"}))
        client, poor = results["poor"]
        assert poor.request_counts is not None and poor.request_counts.failed == 3
        assert poor.error_file_id is not None
        errors = [json.loads(x)
                  for x in client.files.content(poor.error_file_id).text.splitlines()]
        assert {e["response"]["status_code"] for e in errors} == {403}
        assert {e["error"]["code"] for e in errors} == {"budget_exceeded"}
        _, rich = results["rich"]
        assert rich.request_counts is not None and rich.request_counts.completed == 3
        engine = create_engine(settings.effective_database_url)
        try:
            ledger = BudgetLedger(create_sessionmaker(engine))
            spent, reserved = await ledger.totals(keys["rich"][1])
            assert spent == pytest.approx(rich.model_extra["cost_usd"]) and spent > 0
            assert reserved == pytest.approx(0.0)
        finally:
            await engine.dispose()
    finally:
        srv.stop()


async def test_the_grouped_layout(temporal_env: WorkflowEnvironment, tmp_path: Any,
                                  config_file: Any, fake: FakeProvider) -> None:
    """Items run 4 to a BatchChunkWorkflow: same output and error files, items fail alone,
    each findable by the chunk's TokenHubBatchId and TokenHubCustomIds."""
    from api.app import create_app
    from shared.config import load_catalog
    from tests.integration.conftest import settings_for, temporal_address

    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),
                            batch_group_size=4, batch_items_per_run=10)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    try:
        msg = [{"role": "user", "content": "grouped"}]
        lines: list[Any] = [line(f"g{i}", "/v1/chat/completions", {
            "model": "small", "messages": msg, "policy": {"allow_escalation": False}})
            for i in range(11)]
        lines.insert(5, line("bad", "/v1/nope", {}))
        lines.append(line("plan", "/v1/plan", {"request": {"messages": msg},
                                               "orchestration": {"mode": "planning"}}))
        fake.script("small-up", [{"kind": "ok"}] * 3 + [{"status": 400}])  # one call fails
        client = sdk(srv)
        f = client.files.create(file=("g.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        done = await asyncio.to_thread(wait_batch, client, batch.id, {"completed"})
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (11, 2)
        assert done.output_file_id is not None and done.error_file_id is not None
        out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
        assert len({o["custom_id"] for o in out}) == 11  # ten chat items and the plan
        errs = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
        assert sorted(e["error"]["code"] for e in errs) == ["all_providers_failed",
                                                           "invalid_request"]
        query = f"TokenHubBatchId = '{batch.id}' AND TokenHubCustomIds = 'g7'"
        for _ in range(100):
            found = [w async for w in temporal_env.client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert [w.workflow_type for w in found] == ["BatchChunkWorkflow"]
    finally:
        srv.stop()
