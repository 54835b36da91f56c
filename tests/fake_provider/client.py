"""Drive a fake provider (in this process or another) through its control endpoints."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from aiohttp import web

from tests.fake_provider.server import make_app
from tests.support.server import free_port


class FakeProvider:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.url = f"{self.base}/v1"
        self._http = httpx.Client(timeout=10, trust_env=False)

    def script(self, model: str, steps: list[dict[str, Any]]) -> None:
        self._http.post(f"{self.base}/_control/script",
                        json={"model": model, "steps": steps}).raise_for_status()

    def set_default(self, **values: Any) -> None:
        self._http.post(f"{self.base}/_control/default", json=values).raise_for_status()

    def set_models(self, **spec: Any) -> None:
        """What GET /v1/models answers: ``data=[...]``, or ``raw="...", status=...``."""
        self._http.post(f"{self.base}/_control/models", json=spec).raise_for_status()

    def reset(self) -> None:
        self._http.post(f"{self.base}/_control/reset").raise_for_status()

    def calls(self, model: str | None = None) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self._http.get(f"{self.base}/_control/calls").json()["calls"]
        return [c for c in calls if model is None or c["model"] == model]

    def count(self, model: str | None = None) -> int:
        return len(self.calls(model))

    def close(self) -> None:
        self._http.close()


class ThreadedFake:
    """The fake server on its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(make_app(), access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> FakeProvider:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake provider did not start")
        return FakeProvider(f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def start_in_thread() -> tuple[FakeProvider, ThreadedFake]:
    server = ThreadedFake()
    return server.start(), server
