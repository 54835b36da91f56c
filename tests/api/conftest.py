"""A real gateway (uvicorn on loopback) over the fake provider, local execution."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.http_server import uvicorn_options
from shared.config import Settings, load_catalog
from tests.support.server import ThreadedServer


def gateway_settings(tmp_path: Path, config_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"config": config_file, "data_dir": tmp_path,
                              "temporal_enabled": False, "env": "test",
                              "require_api_key": False}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def gateway_factory(tmp_path: Path, config_file: Path) -> Iterator[Any]:
    servers: list[ThreadedServer] = []

    def start(**overrides: Any) -> ThreadedServer:
        settings = gateway_settings(tmp_path, config_file, **overrides)
        srv = ThreadedServer(create_app(settings, load_catalog(settings)),
                             **uvicorn_options(settings))
        srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def gateway(gateway_factory: Any) -> ThreadedServer:
    srv: ThreadedServer = gateway_factory()
    return srv


@pytest.fixture
def client(gateway: ThreadedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30, trust_env=False) as c:
        yield c
