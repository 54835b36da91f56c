"""One catalog: a separate `tokenhub worker` process runs the workflows for providers and
models added through the gateway's admin API after it started, with keys from the
environment and from the vault, and no key reaches workflow history, logs or the DB."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.http_server import uvicorn_options
from shared.config import load_catalog
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.integration.procs import kill, start_worker
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal

ADMIN = "admin-token-for-catalog-tests-0123456789"
VAULT_PW = "vault password for the catalog tests"
ENV_KEY = "sk-env-held-provider-key-0123456789"
VAULT_KEY = "sk-vault-held-provider-key-9876543210"
VAULT_KEY_2 = "sk-vault-held-provider-key-rotated-555"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def _chat(c: httpx.AsyncClient, model: str) -> httpx.Response:
    return await c.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": f"hello {model}"}]})


async def _until_temporal(c: httpx.AsyncClient, timeout_s: float) -> None:
    """The worker polls the queue (the gateway falls back to local until it can start)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = await _chat(c, "small")
        assert r.status_code == 200, r.text
        if r.headers["x-tokenhub-executor"] == "temporal":
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the worker never ran a workflow")
        await asyncio.sleep(0.3)


def _assert_served_by_worker(r: httpx.Response, model: str, log: Path) -> None:
    assert r.status_code == 200, r.text + log.read_text()[-3000:]
    assert r.headers["x-tokenhub-executor"] == "temporal"
    assert r.headers["x-tokenhub-attempts"] == "1", r.text
    assert r.headers["x-tokenhub-model"] == model


async def _histories(env: WorkflowEnvironment, queue: str, at_least: int) -> bytes:
    """Every event of every workflow run on ``queue``, as raw protobuf bytes (payloads are
    JSON there, so a key in an input or result would show up verbatim)."""
    deadline = time.monotonic() + 20
    while True:
        ids = [wf.id async for wf in env.client.list_workflows(f'TaskQueue="{queue}"')]
        if len(ids) >= at_least or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(ids) >= at_least
    out = b""
    for wid in ids:
        history = await env.client.get_workflow_handle(wid).fetch_history()
        out += b"".join(e.SerializeToString() for e in history.events)
    return out


async def test_separate_worker_runs_admin_added_env_and_vault_providers(
        temporal_env: WorkflowEnvironment, fake: FakeProvider, tmp_path: Path,
        config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CATALOG_TEST_KEY", ENV_KEY)  # the worker inherits it
    address = temporal_address(temporal_env)
    settings = settings_for(tmp_path, config_file, address, temporal_embedded_worker=False,
                            admin_token=ADMIN, vault_password=VAULT_PW)
    queue = settings.temporal_task_queue
    log = tmp_path / "worker.log"
    # The worker starts first (same DB: data_dir; same queue; same vault password), so
    # everything below is an admin change it has to pick up without a restart.
    worker = start_worker(config=config_file, data_dir=tmp_path, address=address,
                          queue=queue, log=log,
                          extra_env={"TOKENHUB_VAULT_PASSWORD": VAULT_PW,
                                     "TOKENHUB_LOG_LEVEL": "INFO"})
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    try:
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=60,
                                     headers={"Authorization": f"Bearer {ADMIN}"}) as c:
            await _until_temporal(c, 30)
            r = await c.post("/admin/v1/vault/unlock", json={"password": VAULT_PW})
            assert r.status_code == 200, r.text
            for provider, model in (
                    ({"id": "env-prov", "type": "openai", "base_url": fake.url,
                      "api_key_env": "CATALOG_TEST_KEY"},
                     {"id": "env-model", "provider": "env-prov", "upstream_model": "env-up"}),
                    ({"id": "vault-prov", "type": "openai", "base_url": fake.url,
                      "api_key": VAULT_KEY},
                     {"id": "vault-model", "provider": "vault-prov",
                      "upstream_model": "vault-up"})):
                r = await c.post("/admin/v1/providers", json=provider)
                assert r.status_code == 201, r.text
                r = await c.post("/admin/v1/models", json=model)
                assert r.status_code == 201, r.text

            _assert_served_by_worker(await _chat(c, "env-model"), "env-model", log)
            _assert_served_by_worker(await _chat(c, "vault-model"), "vault-model", log)
            assert [x["auth_sha256"] for x in fake.calls("env-up")] == [sha(ENV_KEY)]
            assert [x["auth_sha256"] for x in fake.calls("vault-up")] == [sha(VAULT_KEY)]

            # A new key for an adapter the worker already has: only its poll can tell.
            r = await c.patch("/admin/v1/providers/vault-prov", json={"api_key": VAULT_KEY_2})
            assert r.status_code == 200, r.text
            await asyncio.sleep(2.5)  # > TOKENHUB_CATALOG_POLL_S (1 s default) + a reload
            _assert_served_by_worker(await _chat(c, "vault-model"), "vault-model", log)
            assert fake.calls("vault-up")[-1]["auth_sha256"] == sha(VAULT_KEY_2)

        history = await _histories(temporal_env, queue, at_least=4)
    finally:
        srv.stop()
        kill(worker)
    assert b"env-up" in history and b"vault-prov" in history  # the right workflows
    for key in (ENV_KEY, VAULT_KEY, VAULT_KEY_2, VAULT_PW):
        assert key.encode() not in history
    _assert_no_key_on_disk(tmp_path, log)


def _assert_no_key_on_disk(tmp_path: Path, log: Path) -> None:
    text = log.read_text()
    for key in (ENV_KEY, VAULT_KEY, VAULT_KEY_2, VAULT_PW):
        assert key not in text
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("*.db*"))
    for key in (VAULT_KEY, VAULT_KEY_2, VAULT_PW):
        assert key.encode() not in raw

