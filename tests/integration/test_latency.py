"""Honest latency on both runtimes: the row's latency is the run's wall clock, an
attempt's latency is the time spent on its model summed over its tries."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from shared.config import load_catalog
from tests.api.logrows import wait_rows
from tests.fake_provider import FakeProvider
from tests.integration.conftest import settings_for, temporal_address
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal

DELAY_MS = 150
TRIES = 3  # RetrySpec.max_tries_per_model


@pytest.mark.parametrize(("temporal", "local_activities"),
                         [(True, "chat"), (True, "none"), (False, "chat")],
                         ids=["workflow-local-activity", "workflow-activity", "local"])
async def test_a_failing_model_s_retries_count_in_the_row_and_the_attempt(
        temporal: bool, local_activities: str, temporal_env: WorkflowEnvironment,
        tmp_path: Path, config_file: Path, fake: FakeProvider) -> None:
    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env),
                            temporal_enabled=temporal,
                            temporal_local_activities=local_activities)
    srv = ThreadedServer(create_app(settings, load_catalog(settings)))
    srv.start()
    try:
        fake.script("small-up", [{"status": 503, "delay_ms": DELAY_MS}] * TRIES)
        rid = f"lat-{uuid.uuid4().hex}"
        async with httpx.AsyncClient(base_url=srv.url, trust_env=False, timeout=30) as c:
            r = await c.post("/v1/chat", headers={"X-Request-ID": rid}, json={
                "request": {"messages": [{"role": "user", "content": "hi"}],
                            "model_hint": "small"}})
        assert r.status_code == 200, r.text
        assert r.headers["x-tokenhub-executor"] == ("temporal" if temporal else "local")
        [row] = wait_rows(srv, rid)
    finally:
        srv.stop()
    first, *rest = row["attempts"]
    assert (first["model"], first["outcome"], first["tries"]) == ("small", "transient", TRIES)
    assert rest and rest[-1]["outcome"] == "ok"
    assert fake.count("small-up") == TRIES
    # each try waited DELAY_MS upstream; the backoffs between them are not the model's time
    assert first["latency_ms"] >= TRIES * DELAY_MS
    # the run waited for every try, the backoffs (≥ 0.1 s + 0.2 s less jitter) and the
    # model that answered
    backoffs_ms = (100 + 200) * 0.8
    assert row["latency_ms"] >= TRIES * DELAY_MS + backoffs_ms + rest[-1]["latency_ms"] * 0.99
