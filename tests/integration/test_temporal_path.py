"""The workflow path against a real Temporal dev server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from engine import devserver
from tests.fake_provider import FakeProvider
from tests.integration.conftest import temporal_address
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal
MSG = [{"role": "user", "content": "hello workflow"}]


async def test_chat_runs_as_a_workflow(temporal_gateway: ThreadedServer,
                                       temporal_env: WorkflowEnvironment,
                                       fake: FakeProvider) -> None:
    rid = f"req-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        r = await c.post("/v1/chat", headers={"X-Request-ID": rid},
                         json={"request": {"messages": MSG, "model_hint": "claude"}})
    assert r.status_code == 200, r.text
    assert r.headers["x-tokenhub-executor"] == "temporal"
    assert r.json()["executor"] == "temporal"
    assert r.json()["response"]["message"]["content"] == "[claude-up] hello workflow"
    desc = await temporal_env.client.get_workflow_handle(rid).describe()
    assert desc.workflow_type == "ChatWorkflow"
    sa = {k.name: v for k, v in ((p.key, p.value) for p in desc.typed_search_attributes)}
    assert sa["TokenHubStatus"] == "ok" and sa["TokenHubModel"] == "claude"
    assert sa["TokenHubProvider"] == "fake-anthropic" and sa["TokenHubCostUsd"] > 0
    memo = await desc.memo()
    assert memo["kind"] == "chat" and "hello" not in json.dumps(memo)  # redacted summary


async def test_same_request_id_twice_is_one_run(temporal_gateway: ThreadedServer,
                                                fake: FakeProvider) -> None:
    rid = f"req-{uuid.uuid4().hex}"
    body = {"request": {"messages": MSG, "model_hint": "small"}}
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        first = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json=body)
        second = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert fake.count("small-up") == 1  # the retry attached to the same workflow


async def test_vote_voters_run_in_parallel(temporal_gateway: ThreadedServer,
                                           fake: FakeProvider) -> None:
    for model in ("small-up", "medium-up", "claude-up", "large-up"):
        fake.script(model, [{"delay_ms": 300}] * 3)
    body = {"request": {"messages": [{"role": "user", "content": "pick a colour"}]},
            "orchestration": {"mode": "vote", "voters": 3}}
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        await c.post("/v1/chat", json={"request": {"messages": MSG}})  # warm up
        fake.reset()
        for model in ("small-up", "medium-up", "claude-up", "large-up"):
            fake.script(model, [{"delay_ms": 300}])
        started = time.perf_counter()
        r = await c.post("/v1/plan", json=body)
        wall = time.perf_counter() - started
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["executor"] == "temporal"
    assert len(data["responses"]) == 3 and len({x["model"] for x in data["responses"]}) == 3
    assert sum(x["selected"] for x in data["responses"]) == 1
    assert data["judge"] and "rationale" in data
    # 3 voters (300 ms each) + a judge (300 ms): serial would be ≥ 1.2 s
    assert wall < 0.9 + 0.3, f"vote took {wall:.3f}s"


async def test_adversarial_plan_shape(temporal_gateway: ThreadedServer,
                                      fake: FakeProvider) -> None:
    body = {"request": {"messages": [{"role": "user", "content": "plan a trip"}]},
            "orchestration": {"mode": "adversarial", "iterations": 2}}
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        r = await c.post("/v1/plan", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["executor"] == "temporal"
    assert {"initial_plan", "critique", "refined_plan", "rounds"} <= set(data)
    assert len(data["rounds"]) == 2
    assert fake.count() == 5  # plan + 2 × (critique + refine)


async def test_workflow_list_finds_the_run_by_search_attribute(
        temporal_gateway: ThreadedServer, temporal_env: WorkflowEnvironment,
        fake: FakeProvider) -> None:
    rid = f"vote-{uuid.uuid4().hex}"
    body = {"request": {"messages": [{"role": "user", "content": "a or b?"}]},
            "orchestration": {"mode": "vote", "voters": 2}}
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        r = await c.post("/v1/plan", json=body, headers={"X-Request-ID": rid})
    assert r.status_code == 200
    query = f"TokenHubMode='vote' AND WorkflowId='{rid}'"
    found: list[dict[str, object]] = []
    for _ in range(50):  # visibility is eventually consistent
        proc = await asyncio.create_subprocess_exec(
            devserver.binary(), "workflow", "list", "--address",
            temporal_address(temporal_env), "--query", query, "-o", "json",
            stdout=asyncio.subprocess.PIPE)
        stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0
        text = stdout.decode().strip()
        found = json.loads(text) if text.startswith("[") else []
        if found:
            break
        await asyncio.sleep(0.1)
    assert [w["execution"]["workflowId"] for w in found] == [rid]


async def test_api_key_id_reaches_the_search_attributes(
        temporal_env: WorkflowEnvironment, fake: FakeProvider, tmp_path: object,
        config_file: object) -> None:
    from api.app import create_app
    from api.http_server import uvicorn_options
    from shared.config import load_catalog
    from tests.integration.conftest import settings_for

    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),  # type: ignore[arg-type]
                            require_api_key=True, admin_token="admin-secret-for-temporal")
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    try:
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=30) as c:
            r = await c.post("/admin/v1/apikeys", json={"name": "wf", "scopes": ["chat"]},
                             headers={"Authorization": "Bearer admin-secret-for-temporal"})
            token, key_id = r.json()["token"], r.json()["key"]["id"]
            rid = f"key-{uuid.uuid4().hex}"
            r = await c.post("/v1/chat", headers={"Authorization": f"Bearer {token}",
                                                  "X-Request-ID": rid},
                             json={"request": {"messages": MSG}})
        assert r.status_code == 200 and r.headers["x-tokenhub-executor"] == "temporal"
        desc = await temporal_env.client.get_workflow_handle(rid).describe()
        sa = {p.key.name: p.value for p in desc.typed_search_attributes}
        assert sa["TokenHubApiKeyId"] == key_id
        memo = json.dumps(await desc.memo())
        assert token not in memo and token not in json.dumps(sa)
    finally:
        srv.stop()


def _metric(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))


async def test_a_failed_workflow_run_has_one_honest_record(temporal_gateway: ThreadedServer,
                                                           temporal_env: WorkflowEnvironment,
                                                           fake: FakeProvider) -> None:
    """The model answered (and billed), then the answer failed its JSON schema (422): the
    header, the metric and the log row all say Temporal ran it, and the call is charged."""
    from tests.api.logrows import wait_rows

    rid = f"req-{uuid.uuid4().hex}"
    body = {"request": {"messages": MSG, "model_hint": "claude"},
            "output_format": {"type": "json", "schema": {"type": "object"}}}
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        r = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json=body)
        metrics = (await c.get("/metrics")).text
    assert r.status_code == 422, r.text
    assert r.headers["x-tokenhub-executor"] == "temporal"
    assert r.headers["x-tokenhub-model"] == "claude"
    assert r.headers["x-tokenhub-provider"] == "fake-anthropic"
    assert "summary" not in r.json()["error"]  # the run summary never reaches the client
    assert _metric(metrics, 'tokenhub_executor_total{executor="temporal",kind="chat"}') == 1
    assert _metric(metrics, 'tokenhub_executor_total{executor="local"') == 0
    assert _metric(metrics, 'tokenhub_cost_usd_total{model="claude"}') > 0
    desc = await temporal_env.client.get_workflow_handle(rid).describe()
    assert desc.workflow_type == "ChatWorkflow"
    [row] = wait_rows(temporal_gateway, rid)
    assert row["executor"] == "temporal" and row["status"] == "error"
    assert row["http_status"] == 422 and row["error_class"] == "output_validation_failed"
    assert row["model"] == "claude" and row["cost_usd"] > 0 and row["output_tokens"] > 0
    assert fake.count("claude-up") == 1


async def test_a_successful_workflow_run_is_logged_as_temporal(
        temporal_gateway: ThreadedServer, fake: FakeProvider) -> None:
    from tests.api.logrows import wait_rows

    rid = f"req-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        r = await c.post("/v1/plan", headers={"X-Request-ID": rid}, json={
            "request": {"messages": MSG}, "orchestration": {"mode": "planning"}})
        metrics = (await c.get("/metrics")).text
    assert r.status_code == 200 and r.headers["x-tokenhub-executor"] == "temporal"
    [row] = wait_rows(temporal_gateway, rid)
    assert (row["executor"], row["kind"], row["status"]) == ("temporal", "plan", "ok")
    assert row["input_tokens"] == r.json()["usage"]["prompt_tokens"] > 0
    assert _metric(metrics, 'tokenhub_executor_total{executor="temporal",kind="plan"}') == 1


async def test_a_repeat_with_another_body_is_a_409_on_the_workflow_path(
        temporal_gateway: ThreadedServer, fake: FakeProvider) -> None:
    rid = f"req-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        first = await c.post("/v1/chat", headers={"X-Request-ID": rid},
                             json={"request": {"messages": MSG}})
        again = await c.post("/v1/chat", headers={"X-Request-ID": rid},
                             json={"request": {"messages": MSG}})
        other = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json={
            "request": {"messages": [{"role": "user", "content": "another question"}]}})
        metrics = (await c.get("/metrics")).text
    assert first.status_code == again.status_code == 200
    assert first.headers["x-tokenhub-executor"] == "temporal"
    assert other.status_code == 409, other.text
    assert other.json()["error"]["type"] == "conflict" and rid in other.json()["error"]["message"]
    assert fake.count() == 1
    # the repeat attached to the first run: counted once
    assert _metric(metrics, 'tokenhub_executor_total{executor="temporal",kind="chat"}') == 1


async def test_a_cache_hit_starts_no_workflow(temporal_gateway: ThreadedServer,
                                              temporal_env: WorkflowEnvironment,
                                              fake: FakeProvider) -> None:
    """Issue 16: the miss runs as a workflow and its answer is kept; the hit is answered by
    the gateway (executor cache): no workflow with its request id, no provider call."""
    body = {"request": {"messages": [{"role": "user", "content": f"c {uuid.uuid4().hex}"}],
                        "model_hint": "claude"}, "cache": {"ttl_s": 60}}
    miss_id, hit_id = f"req-{uuid.uuid4().hex}", f"req-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=temporal_gateway.url, trust_env=False,
                                 timeout=30) as c:
        miss = await c.post("/v1/chat", headers={"X-Request-ID": miss_id}, json=body)
        hit = await c.post("/v1/chat", headers={"X-Request-ID": hit_id}, json=body)
    assert (miss.headers["x-tokenhub-executor"], miss.headers["x-tokenhub-cache"]) == \
        ("temporal", "miss")
    assert (hit.headers["x-tokenhub-executor"], hit.headers["x-tokenhub-cache"]) == \
        ("cache", "hit")
    assert hit.json()["response"]["message"] == miss.json()["response"]["message"]
    assert fake.count() == 1
    await temporal_env.client.get_workflow_handle(miss_id).describe()
    with pytest.raises(Exception, match="not found"):
        await temporal_env.client.get_workflow_handle(hit_id).describe()
