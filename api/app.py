"""The FastAPI application factory and its lifespan.

Nothing is built at import time: ``create_app()`` reads settings (or takes
them), and the lifespan builds the DB engine, provider clients and writers.
``uvicorn --factory api.app:create_app`` works for multi-process serving.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.dispatch import Dispatcher
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.routes import chat, health, openai_compat, plan
from api.state import AppState
from api.temporal import TemporalRunner
from shared.config import Catalog, Settings, load_catalog, load_settings
from shared.providers.registry import ProviderRegistry
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from shared.telemetry.metrics import Metrics

log = logging.getLogger("tokenhub.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    catalog: Catalog = app.state.catalog
    url = settings.effective_database_url
    await migrate(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    metrics = Metrics()
    writer = RequestLogWriter(sessionmaker)
    await writer.start()
    registry = ProviderRegistry(catalog, settings)
    state = AppState(settings=settings, catalog=catalog, registry=registry, log_writer=writer,
                     metrics=metrics, sessionmaker=sessionmaker)
    app.state.tokenhub = state
    temporal = TemporalRunner(settings) if settings.temporal_enabled else None
    app.state.dispatcher = Dispatcher(state, temporal)
    log.info("gateway ready: %d provider(s), %d model(s)",
             len(catalog.providers), len(catalog.models))
    try:
        yield
    finally:
        await writer.aclose()
        await registry.aclose()
        await engine.dispose()


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
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
