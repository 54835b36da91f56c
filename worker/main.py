"""``tokenhub worker``: run a Temporal worker with its own store and provider clients.

Its providers come from the same live catalog as the gateway's (shared/catalog.py): file,
environment and database definitions, polled for admin changes, with vault-held keys when
``TOKENHUB_VAULT_PASSWORD`` (or ``_FILE``) lets it unlock the vault."""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client

from engine.client import connect, ensure_search_attributes
from shared.catalog import LiveCatalog, process_secrets
from shared.config import Catalog, Settings
from shared.orchestration.ports import RecordBatch
from shared.runtime import tune_gc
from shared.security.budgets import BudgetLedger
from shared.security.redact import install_redaction
from shared.security.vault import Vault
from shared.store.batches import BatchStore
from shared.store.db import create_engine, create_sessionmaker
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
    url = settings.effective_database_url
    secrets = process_secrets(settings, catalog)
    password = settings.read_vault_password()
    secrets.add(password)
    install_redaction(secrets)  # vault keys join ``secrets`` as they are decrypted
    await migrate(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    # No auto-lock here: the worker holds the password anyway; it never initializes the vault.
    vault = Vault(sessionmaker) if password is not None else None
    live = LiveCatalog(settings, catalog, sessionmaker, vault=vault, secrets=secrets,
                       password=password, role="worker")
    writer = RequestLogWriter(url)
    await writer.start()

    async def write(batch: RecordBatch) -> None:
        await writer.write_now(batch.record, batch.rewards)

    try:
        await live.reload()
        live.start_polling()
        client = await connect_with_retry(settings, stop)
        if client is None:
            return 0
        try:
            await ensure_search_attributes(client, settings.temporal_namespace)
            worker = build_worker(client, task_queue=settings.temporal_task_queue,
                                  lookup=live.adapter, writer=write,
                                  attempt_timeout_s=settings.read_timeout_s,
                                  sandbox=settings.temporal_workflow_sandbox,
                                  batches=BatchStore(sessionmaker),
                                  budgets=BudgetLedger(
                                      sessionmaker, ttl_s=settings.budget_reservation_ttl_s))
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
        await live.aclose()
        if vault is not None:
            vault.lock()
        await engine.dispose()
