"""The FastAPI application factory and its lifespan.

Nothing is built at import time: ``create_app()`` reads settings (or takes
them), and the lifespan builds the DB engine, provider clients and writers.
``uvicorn --factory api.app:create_app`` works for multi-process serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware.cors import CORSMiddleware

from api.background import cache_sweep, retention_prune, routing_upkeep, vault_watch
from api.batches import Batches
from api.catalog import attach, build_live_catalog, reload_catalog
from api.codec_cors import CodecCORS, codec_origins
from api.deps import document_lean_routes
from api.dispatch import Dispatcher
from api.embedded import RelayWorker, start_embedded_worker
from api.errors import install_error_handlers
from api.gateway import Gateway
from api.middleware import RequestContextMiddleware
from api.openapi import finish as finish_openapi
from api.response_cache import ResponseCache
from api.routes import (
    admin_aliases,
    admin_cache,
    admin_catalog,
    admin_discovery,
    admin_runtime,
    admin_security,
    batches,
    chat,
    codec,
    embeddings,
    feedback,
    files,
    health,
    openai_compat,
    plan,
    runs,
)
from api.runs import AsyncRuns
from api.security import SecurityState, build_security
from api.service import RequestService
from api.state import AppState
from api.stream_relay import DurableStreams
from api.temporal import TemporalRunner
from engine.codec import EncryptionCodec
from shared import discovery
from shared.cache.memory import MemoryFront
from shared.cache.redis_store import RedisCacheStore
from shared.cache.sql import SqlCacheStore
from shared.cache.store import CacheStore
from shared.catalog import process_secrets
from shared.config import Catalog, Settings, load_catalog, load_settings
from shared.errors import ConfigError, Unauthorized
from shared.orchestration.handoff import Handoff
from shared.orchestration.retry import RetrySpec
from shared.runtime import tune_gc
from shared.security.redact import install_redaction
from shared.store.batches import BatchStore
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from shared.telemetry.metrics import Metrics

log = logging.getLogger("tokenhub.api")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    gw: Gateway = app.state.tokenhub
    settings, catalog, metrics = gw.settings, gw.catalog, gw.metrics
    url = settings.effective_database_url
    await migrate(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    writer = RequestLogWriter(url)
    await writer.start()
    live = build_live_catalog(settings, catalog, sessionmaker, gw.secrets)
    retry = RetrySpec(attempt_timeout_s=settings.read_timeout_s,
                      heartbeat_timeout_s=settings.temporal_heartbeat_timeout_s,
                      local_activities=settings.temporal_local_activities != "none")
    plan_retry = dataclasses.replace(
        retry, local_activities=settings.temporal_local_activities == "all")
    state = AppState(settings=settings, catalog=catalog, registry=live.registry, log_writer=writer,
                     metrics=metrics, sessionmaker=sessionmaker, retry=retry,
                     plan_retry=plan_retry)
    sec = build_security(state, gw.secrets)
    gw.state, gw.security = state, sec
    await _unlock_vault_from_env(state, sec)
    attach(state, live, sec.vault)
    await reload_catalog(state)
    live.start_polling()  # other processes' admin changes (TOKENHUB_CATALOG_POLL_S)
    discovery_task = await discovery.start(live)  # `discover` providers (vLLM env)
    temporal = TemporalRunner(settings) if settings.temporal_enabled else None
    gw.dispatcher = Dispatcher(state, temporal)
    relay, streams = None, None
    if temporal is not None:
        relay = RelayWorker(state, temporal, Handoff()) \
            if settings.temporal_stream_relay == "local" else None
        streams = DurableStreams(state, temporal, gw.dispatcher.breaker, relay)
    cache_store = build_cache_store(settings, sessionmaker)
    live.subscribe(lambda _: cache_store.forget())  # a clear elsewhere moves the version
    gw.service = RequestService(state, gw.dispatcher, sec.apikeys, streams,
                                ResponseCache(state, cache_store))
    gw.runs = AsyncRuns(gw.service, temporal, gw.dispatcher.breaker)
    gw.batches = Batches(gw.service, gw.runs, BatchStore(sessionmaker), settings)
    worker_task = await start_embedded_worker(state, temporal,
                                              streams.handoff if streams else None)
    upkeep = asyncio.create_task(routing_upkeep(state), name="routing-upkeep")
    watch = asyncio.create_task(vault_watch(state, sec), name="vault-watch")
    pruning = asyncio.create_task(retention_prune(state), name="retention-prune")
    sweeping = asyncio.create_task(
        cache_sweep(cache_store, interval_s=settings.cache_sweep_interval_s), name="cache-sweep")
    tune_gc()
    log.info("gateway ready: %d provider(s), %d model(s), temporal %s",
             len(catalog.providers), len(catalog.models),
             "on" if temporal else "off")
    try:
        yield
    finally:
        for task in (upkeep, watch, pruning, sweeping, discovery_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sec.vault.lock()  # key material dropped on shutdown
        state.vault_keys.clear()
        if relay is not None:
            await relay.aclose()
        if worker_task is not None:
            worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker_task
        await gw.dispatcher.aclose()
        await gw.runs.aclose()  # unsettled async runs' holds expire (api/runs.py)
        if state.background:  # streams being finished (record, budget) get a moment
            await asyncio.wait(set(state.background), timeout=5)
        for task in list(state.background):
            task.cancel()
        await asyncio.gather(*state.background, return_exceptions=True)
        await writer.aclose()
        await cache_store.aclose()
        await live.aclose()  # stops the poll, closes every registry
        await engine.dispose()


def build_cache_store(settings: Settings,
                      sessionmaker: async_sessionmaker[AsyncSession]) -> MemoryFront:
    """The response cache's store: Redis when TOKENHUB_CACHE_URL is set, else the database;
    with a small memory of recent entries in front (shared/cache/memory.py)."""
    store: CacheStore = RedisCacheStore.from_url(settings.cache_url) if settings.cache_url \
        else SqlCacheStore(sessionmaker)
    return MemoryFront(store, max_entries=settings.cache_memory_entries)


async def _unlock_vault_from_env(state: AppState, sec: SecurityState) -> None:
    pw = state.settings.read_vault_password()
    if pw is None:
        state.metrics.vault_unlocked.set(0)
        return
    sec.secrets.add(pw)
    try:
        await sec.vault.unlock(pw)
    except Unauthorized:
        raise ConfigError("TOKENHUB_VAULT_PASSWORD(_FILE): wrong vault password") from None
    state.metrics.vault_unlocked.set(1)


def _document_bodies(app: FastAPI) -> None:
    """OpenAPI: FastAPI's document plus the lean hot routes (api/deps.py), with every
    route's error responses (api/openapi.py)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish_openapi(document_lean_routes(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, catalog: Catalog | None = None) -> FastAPI:
    """Build the gateway app. Settings and catalog default to the environment."""
    settings = settings or load_settings()
    catalog = catalog or load_catalog(settings)
    app = FastAPI(title="TokenHub", version="0.1.0", lifespan=lifespan,
                  docs_url="/docs", redoc_url=None)
    registry = process_secrets(settings, catalog)
    install_redaction(registry)
    # set by `serve --workers N` (api/processes.py): metrics summed over the processes
    metrics = Metrics(multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None)
    keys = settings.read_payload_keys()
    app.state.tokenhub = Gateway(settings=settings, catalog=catalog, metrics=metrics,
                                 secrets=registry,
                                 codec=EncryptionCodec(keys) if keys else None)
    install_error_handlers(app)
    # admin_discovery before admin_catalog: ids may hold "/", so "/providers/{id:path}"
    # would otherwise take "/providers/x/discover" as the provider "x/discover"
    for module in (chat, openai_compat, embeddings, plan, runs, files, batches, feedback,
                   health, codec, admin_security, admin_discovery, admin_catalog,
                   admin_aliases, admin_runtime, admin_cache):
        app.include_router(module.router)
    _document_bodies(app)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                           allow_headers=["authorization", "content-type", "x-request-id",
                                          "x-tokenhub-cache-ttl"],
                           expose_headers=["x-request-id", "x-tokenhub-model",
                                           "x-tokenhub-provider", "x-tokenhub-executor",
                                           "x-tokenhub-run-url", "x-tokenhub-cache"])
    app.add_middleware(CodecCORS, origins=codec_origins(settings))  # outside the one above
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes,
                       body_timeout_s=settings.body_timeout_s,
                       metrics=metrics,  # an upload's multipart envelope: 64 KiB more
                       uploads={"/v1/files": settings.max_batch_file_bytes + 65536})
    return app
