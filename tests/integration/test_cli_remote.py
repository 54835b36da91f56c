"""``tokenhub batch`` and ``tokenhub runs`` against a real gateway (dev server behind it)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.fake_provider import FakeProvider
from tests.support.server import ThreadedServer

pytestmark = pytest.mark.temporal
MSG = [{"role": "user", "content": "cli"}]


def test_batch_submit_wait_status_results(temporal_gateway: ThreadedServer, fake: FakeProvider,
                                          tmp_path: Path) -> None:
    src = tmp_path / "requests.jsonl"
    src.write_text("".join(json.dumps({
        "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": "small", "messages": MSG}}) + "\n" for i in range(6)))
    runner = CliRunner()
    url = ["--url", temporal_gateway.url]
    res = runner.invoke(app, ["batch", "submit", str(src), "--wait", *url])
    assert res.exit_code == 0, res.output
    batch_id = res.output.splitlines()[0].strip()
    assert batch_id.startswith("batch_")
    assert '"status": "completed"' in res.output
    res = runner.invoke(app, ["batch", "status", batch_id, *url])
    assert res.exit_code == 0 and json.loads(res.output)["request_counts"]["completed"] == 6
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["batch", "results", batch_id, "-o", str(out), *url])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["custom_id"] for x in lines) == [f"r{i}" for i in range(6)]
    res = runner.invoke(app, ["batch", "status", "batch_nope", *url])
    assert res.exit_code == 1 and "404" in res.output


def test_runs_show_watch_list_cancel(temporal_gateway: ThreadedServer,
                                     fake: FakeProvider) -> None:
    with httpx.Client(base_url=temporal_gateway.url, trust_env=False) as c:
        run_id = c.post("/v1/runs", json={"chat": {"request": {"messages": MSG}}}).json()["id"]
    runner = CliRunner()
    url = ["--url", temporal_gateway.url]
    res = runner.invoke(app, ["runs", "watch", run_id, *url])  # follows until it ends
    assert res.exit_code == 0, res.output
    assert "step_started" in res.output and "finished" in res.output
    res = runner.invoke(app, ["runs", "show", run_id, *url])
    assert res.exit_code == 0 and json.loads(res.output)["status"] == "completed"
    res = runner.invoke(app, ["runs", "list", *url])
    assert res.exit_code == 0 and run_id in res.output
    res = runner.invoke(app, ["runs", "cancel", run_id, *url])
    assert res.exit_code == 0 and '"closed"' in res.output
