"""``tokenhub worker``: run a Temporal worker with its own store and provider clients."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client

from engine.client import connect, ensure_search_attributes
from shared.config import Catalog, Settings
from shared.orchestration.ports import RecordBatch
from shared.providers.registry import ProviderRegistry
from shared.runtime import tune_gc
from shared.security.redact import SecretRegistry, install_redaction
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from worker.build import build_worker, install_signal_handlers

log = logging.getLogger("tokenhub.worker")


async def connect_with_retry(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Wait for Temporal (it may still be starting); None if asked to stop first."""
    delay = 0.2
    while not stop.is_set():
        try:
            return await connect(settings)
        except (TimeoutError, RuntimeError, OSError) as exc:
            log.info("waiting for Temporal at %s: %s", settings.temporal_address, exc)
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(delay * 2, 5.0)
    return None


async def run_worker(settings: Settings, catalog: Catalog) -> int:
    """Poll until SIGINT/SIGTERM (exit status 0). The SDK retries polls while Temporal is
    away, however long; should the worker still fail (a fatal poll error, Temporal gone
    while registering), it logs why and returns 1, for a supervisor to restart it."""
    stop = asyncio.Event()
    install_signal_handlers(stop)
    secrets = SecretRegistry()  # as the gateway does (api/app.py): no key in a log line
    for secret in (settings.openai_api_key, settings.anthropic_api_key,
                   settings.vault_password, settings.api_key_pepper, settings.admin_token):
        secrets.add(secret.get_secret_value() if secret else None)
    for provider in catalog.providers:
        secrets.add(provider.resolve_key())
    install_redaction(secrets)
    url = settings.effective_database_url
    await migrate(url)
    writer = RequestLogWriter(url)
    await writer.start()
    registry = ProviderRegistry(catalog, settings)

    async def write(batch: RecordBatch) -> None:
        await writer.write_now(batch.record, batch.rewards)

    try:
        client = await connect_with_retry(settings, stop)
        if client is None:
            return 0
        try:
            await ensure_search_attributes(client, settings.temporal_namespace)
            worker = build_worker(client, task_queue=settings.temporal_task_queue,
                                  lookup=registry.get, writer=write,
                                  attempt_timeout_s=settings.read_timeout_s,
                                  sandbox=settings.temporal_workflow_sandbox)
            tune_gc()
            log.info("worker polling %s on %s", settings.temporal_task_queue,
                     settings.temporal_address)
            async with worker:
                await stop.wait()
        except Exception:  # a fatal worker error comes out of `async with worker`
            log.exception("worker failed, exiting")
            return 1
        log.info("worker stopped")
        return 0
    finally:
        await writer.aclose()
        await registry.aclose()
