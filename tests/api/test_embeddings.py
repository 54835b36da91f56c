"""``POST /v1/embeddings`` with the official openai SDK against the fake provider: routed
among embedding models only, charged to the key's budget, recorded (kind ``embeddings``)
and counted in /metrics; bad input is a 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from api.app import create_app
from shared.config import load_catalog
from tests.api.conftest import gateway_settings
from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

ADMIN = "admin-token-for-embedding-tests-0123"


@pytest.fixture
def emb_gateway(tmp_path: Path, fake: FakeProvider, monkeypatch: Any) -> Iterator[ThreadedServer]:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-openai-secret")
    cfg = tmp_path / "emb.yaml"
    cfg.write_text(f"""
providers:
  - {{id: fake-openai, type: openai, base_url: "{fake.url}", api_key_env: FAKE_OPENAI_KEY}}
  - {{id: fake-anthropic, type: anthropic, base_url: "{fake.url}"}}
models:
  - {{id: chatty, provider: fake-openai, upstream_model: chatty-up, weight: 5}}
  - {{id: emb, provider: fake-openai, upstream_model: emb-up, kind: embedding, weight: 5,
      input_per_1k: 0.02}}
  - {{id: emb-backup, provider: fake-openai, upstream_model: emb-backup-up, kind: embedding,
      weight: 1, input_per_1k: 0.01}}
  - {{id: claude-emb, provider: fake-anthropic, upstream_model: c, kind: embedding, weight: 0}}
aliases:
  - {{id: embeddings-ab, targets: {{emb: 1}}}}
""")
    settings = gateway_settings(tmp_path, cfg, admin_token=ADMIN, require_api_key=True)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    yield srv
    srv.stop()


def _key(srv: ThreadedServer, budget: float | None = None) -> str:
    with httpx.Client(base_url=srv.url, trust_env=False, timeout=30,
                      headers={"Authorization": f"Bearer {ADMIN}"}) as c:
        r = c.post("/admin/v1/apikeys", json={"name": "emb", "scopes": ["chat"],
                                              "monthly_budget_usd": budget})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def _client(srv: ThreadedServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key=key, max_retries=0,
                         http_client=httpx.Client(trust_env=False))


def test_sdk_embeddings_float_base64_dimensions_and_records(
        emb_gateway: ThreadedServer, fake: FakeProvider) -> None:
    key = _key(emb_gateway)
    with _client(emb_gateway, key) as client:
        raw = client.embeddings.with_raw_response.create(model="auto",
                                                        input=["hello", "world"])
        res = raw.parse()  # the SDK asks for base64 by default and decodes it
        assert [d.index for d in res.data] == [0, 1] and len(res.data[0].embedding) == 16
        assert res.model == "emb" and res.usage.prompt_tokens > 0
        assert raw.headers["x-tokenhub-model"] == "emb"
        one = client.embeddings.create(model="emb", input="hello", encoding_format="float",
                                       dimensions=8)
        assert len(one.data) == 1 and len(one.data[0].embedding) == 8
        alias = client.embeddings.create(model="embeddings-ab", input=[[1, 2, 3]])
        assert alias.model == "emb"
    upstream = fake.calls("emb-up")
    assert upstream[0]["params"]["encoding_format"] == "float"  # we decode nothing twice
    assert upstream[1]["params"]["dimensions"] == 8
    rows = wait_rows(emb_gateway, raw.headers["x-request-id"])
    assert rows[0]["kind"] == "embeddings" and rows[0]["model"] == "emb"
    assert rows[0]["cost_usd"] > 0 and rows[0]["input_tokens"] > 0
    metrics = httpx.get(f"{emb_gateway.url}/metrics", trust_env=False).text
    assert 'tokenhub_model_calls_total{model="emb",provider="fake-openai",status="ok"} 3.0' \
        in metrics
    assert 'tokenhub_executor_total{executor="local",kind="embeddings"} 3.0' in metrics


def test_embeddings_fail_over_and_chat_never_picks_an_embedding_model(
        emb_gateway: ThreadedServer, fake: FakeProvider) -> None:
    key = _key(emb_gateway)
    fake.script("emb-up", [{"status": 400}])
    with _client(emb_gateway, key) as client:
        res = client.embeddings.create(model="auto", input="x")
        assert res.model == "emb-backup"
        for _ in range(3):
            chat = client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}])
            assert chat.model == "chatty"


def test_embeddings_bad_input_is_400_and_budget_is_enforced(
        emb_gateway: ThreadedServer) -> None:
    key = _key(emb_gateway)
    with _client(emb_gateway, key) as client:
        for bad in ("", [], ["ok", ""]):
            with pytest.raises(openai.BadRequestError):
                client.embeddings.create(model="auto", input=bad)
        with pytest.raises(openai.BadRequestError, match="chat model"):
            client.embeddings.create(model="chatty", input="x")
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="nope", input="x")
    poor = _key(emb_gateway, budget=0.0)
    with _client(emb_gateway, poor) as client, pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="emb", input="x" * 400)
