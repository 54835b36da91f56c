"""The FastAPI application factory and its lifespan.

Nothing is built at import time: ``create_app()`` reads settings (or takes
them), and the lifespan builds the DB engine, provider clients and writers.
``uvicorn --factory api.app:create_app`` works for multi-process serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.background import routing_upkeep
from api.dispatch import Dispatcher
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.routes import chat, health, openai_compat, plan
from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from shared.config import Catalog, Settings, load_catalog, load_settings
from shared.orchestration.ports import RecordBatch
from shared.providers.registry import ProviderRegistry
from shared.routing.retry import RetrySpec
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from shared.telemetry.metrics import Metrics
from worker.main import build_worker

log = logging.getLogger("tokenhub.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    catalog: Catalog = app.state.catalog
    url = settings.effective_database_url
    await migrate(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    metrics: Metrics = app.state.metrics
    writer = RequestLogWriter(sessionmaker)
    await writer.start()
    registry = ProviderRegistry(catalog, settings)
    retry = RetrySpec(attempt_timeout_s=settings.read_timeout_s,
                      heartbeat_timeout_s=settings.temporal_heartbeat_timeout_s,
                      local_activities=settings.temporal_local_activities)
    state = AppState(settings=settings, catalog=catalog, registry=registry, log_writer=writer,
                     metrics=metrics, sessionmaker=sessionmaker, retry=retry)
    app.state.tokenhub = state
    temporal = TemporalRunner(settings) if settings.temporal_enabled else None
    app.state.dispatcher = Dispatcher(state, temporal)
    worker_task = await _start_embedded_worker(state, temporal)
    upkeep = asyncio.create_task(routing_upkeep(state), name="routing-upkeep")
    log.info("gateway ready: %d provider(s), %d model(s), temporal %s",
             len(catalog.providers), len(catalog.models),
             "on" if temporal else "off")
    try:
        yield
    finally:
        upkeep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upkeep
        if worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker_task
        await writer.aclose()
        await registry.aclose()
        await engine.dispose()


async def _start_embedded_worker(state: AppState, temporal: TemporalRunner | None
                                 ) -> asyncio.Task[None] | None:
    """With TOKENHUB_TEMPORAL_EMBEDDED_WORKER, run a worker in this process: workflow
    starts can then be eager (no matching round trip for the first workflow task)."""
    if temporal is None or not state.settings.temporal_embedded_worker:
        return None
    try:
        client = await temporal.client()
    except TemporalUnavailable as exc:
        log.warning("embedded worker not started: %s", exc)
        return None

    async def write(batch: RecordBatch) -> None:
        await state.log_writer.write_now(batch.record, batch.rewards)

    worker = build_worker(client, task_queue=state.settings.temporal_task_queue,
                          lookup=state.registry.get, writer=write,
                          attempt_timeout_s=state.retry.attempt_timeout_s)
    temporal.eager = True
    return asyncio.create_task(worker.run(), name="embedded-temporal-worker")


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """Build the gateway app. Settings and catalog default to the environment."""
    settings = settings or load_settings()
    catalog = catalog or load_catalog(settings)
    app = FastAPI(title="TokenHub", version="0.1.0", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.catalog = catalog
    install_error_handlers(app)
    for module in (chat, openai_compat, plan, health):
        app.include_router(module.router)
    app.state.metrics = Metrics()
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
                       metrics=app.state.metrics)
    return app
