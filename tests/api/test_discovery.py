"""Model discovery: TOKENHUB_VLLM_ENDPOINTS alone serves chat, an unreachable server is
retried, and the admin discover endpoints list and add models (404 / 502 on bad input)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from shared.config import Settings, load_catalog
from tests.fake_provider import FakeProvider
from tests.fake_provider.client import ThreadedFake
from tests.support.server import ThreadedServer, free_port

ADMIN = "admin-token-for-discovery-tests-0123"


@pytest.fixture
def env_gateway(tmp_path: Path) -> Iterator[Any]:
    servers: list[ThreadedServer] = []

    def start(endpoint: str, **extra: Any) -> ThreadedServer:
        settings = Settings(_env_file=None, data_dir=tmp_path,  # type: ignore[call-arg]
                            temporal_enabled=False, env="test", require_api_key=False,
                            admin_token=ADMIN, vllm_endpoints=[endpoint], **extra)
        srv = ThreadedServer(create_app(settings, load_catalog(settings)))
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def admin(srv: ThreadedServer) -> httpx.Client:
    return httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN}"})


def catalog_models(srv: ThreadedServer) -> dict[str, dict[str, Any]]:
    with admin(srv) as c:
        return {m["id"]: m for m in c.get("/admin/v1/models").json()["data"]}


def test_vllm_endpoints_alone_discovers_models_and_answers_chat(
        env_gateway: Any, fake: FakeProvider) -> None:
    srv = env_gateway(fake.url)
    models = catalog_models(srv)
    assert set(models) == {"fake-small", "fake-large"}
    small = models["fake-small"]
    assert small["provider"] == "vllm" and small["upstream_model"] == "fake-small"
    assert small["max_context_tokens"] == 4096  # vLLM's max_model_len
    assert models["fake-large"]["max_context_tokens"] == 32768
    assert small["input_per_1k"] == 0 and small["output_per_1k"] == 0 and small["weight"] == 5
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        r = c.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": "hello vllm"}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-tokenhub-provider"] == "vllm"
    assert r.json()["choices"][0]["message"]["content"].endswith("hello vllm")
    assert len(fake.calls(r.headers["x-tokenhub-model"])) == 1


def test_unreachable_vllm_at_start_is_retried_not_fatal(env_gateway: Any) -> None:
    port = free_port()
    srv = env_gateway(f"http://127.0.0.1:{port}/v1", vllm_discovery_interval_s=1.0)
    assert catalog_models(srv) == {}  # started anyway, nothing to route to yet
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        r = c.post("/v1/chat/completions", json={
            "model": "auto", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 503, r.text
    late = ThreadedFake()
    late.port = port  # the server comes up later on the configured address
    late.start()
    try:
        deadline = time.monotonic() + 20  # a bound, not a timing claim (retry ≤ 1 s here)
        while "fake-small" not in catalog_models(srv):
            assert time.monotonic() < deadline, "discovery never retried"
            time.sleep(0.1)
    finally:
        late.stop()


def test_admin_discover_lists_and_adds_models(gateway_factory: Any, fake: FakeProvider) -> None:
    srv = gateway_factory(admin_token=ADMIN)
    with admin(srv) as c:
        r = c.get("/admin/v1/providers/fake-vllm/discover")
        assert r.status_code == 200, r.text
        listed = {m["name"]: m for m in r.json()["data"]}
        assert listed["fake-small"]["max_context_tokens"] == 4096
        assert listed["fake-small"]["in_catalog"] is False
        fake.set_models(data=[{"id": "org/Model-7B", "max_model_len": 16384},
                              {"id": "fake-small"}])
        r = c.post("/admin/v1/providers/fake-vllm/discover", json={"models": [
            "org/Model-7B", {"name": "fake-small", "id": "small-disc", "weight": 7,
                             "input_per_1k": 0.001}]})
        assert r.status_code == 201, r.text
        added = {m["id"]: m for m in r.json()["added"]}
        assert added["org-Model-7B"]["upstream_model"] == "org/Model-7B"
        assert added["org-Model-7B"]["max_context_tokens"] == 16384
        assert added["small-disc"]["weight"] == 7 and added["small-disc"]["input_per_1k"] == 0.001
        r = c.get("/admin/v1/providers/fake-vllm/discover")
        assert all(m["in_catalog"] for m in r.json()["data"])
        audit = c.get("/admin/v1/audit").json()["data"]
        assert audit[0]["action"] == "provider.discover" and audit[0]["outcome"] == "ok"
        # Anthropic's model list speaks the same {"data": [{"id"}]} shape
        r = c.get("/admin/v1/providers/fake-anthropic/discover")
        assert r.status_code == 200 and r.json()["data"][0]["name"] == "org/Model-7B"
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30) as c:
        r = c.post("/v1/chat/completions", json={
            "model": "org-Model-7B", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200 and len(fake.calls("org/Model-7B")) == 1


@pytest.mark.parametrize("spec, status", [
    ({"raw": "<html>not a model list</html>", "status": 200}, 200),
    ({"raw": "{\"object\": \"list\"}", "status": 200}, 200),
    ({"raw": "{\"data\": [{\"name\": \"x\"}]}", "status": 200}, 200),
    ({"raw": "{\"error\": \"down\"}", "status": 500}, 500),
])
def test_garbage_model_list_is_a_502_naming_the_status_and_adds_nothing(
        gateway_factory: Any, fake: FakeProvider, spec: dict[str, Any], status: int) -> None:
    srv = gateway_factory(admin_token=ADMIN)
    before = set(catalog_models(srv))
    fake.set_models(**spec)
    with admin(srv) as c:
        for r in (c.get("/admin/v1/providers/fake-vllm/discover"),
                  c.post("/admin/v1/providers/fake-vllm/discover",
                         json={"models": ["fake-small"]})):
            assert r.status_code == 502, r.text
            err = r.json()["error"]
            assert err["type"] == "upstream_error"
            assert err["provider_status"] == status
            assert ("malformed" if status == 200 else f"HTTP {status}") in err["message"]
    assert set(catalog_models(srv)) == before


def test_discover_unknown_provider_is_404(gateway_factory: Any) -> None:
    srv = gateway_factory(admin_token=ADMIN)
    with admin(srv) as c:
        assert c.get("/admin/v1/providers/nope/discover").status_code == 404
        assert c.post("/admin/v1/providers/nope/discover",
                      json={"models": ["x"]}).status_code == 404
        r = c.post("/admin/v1/providers/fake-vllm/discover", json={"models": ["not-listed"]})
        assert r.status_code == 400 and "not-listed" in r.text
