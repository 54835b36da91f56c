"""Background upkeep of the routing state: stats seeded from the request log at start,
Thompson posteriors refreshed from the rewards table periodically."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from api.catalog import reload_catalog
from api.security import SecurityState
from api.state import AppState
from shared.cache.store import CacheStore
from shared.store import repo
from shared.store.retention import prune

log = logging.getLogger("tokenhub.background")


async def seed_stats(state: AppState, *, window: timedelta = timedelta(hours=1)) -> None:
    async with state.sessionmaker() as session:
        stats = await repo.model_stats(session, since=datetime.now(UTC) - window)
    state.stats.seed(stats)


async def refresh_posteriors(state: AppState) -> None:
    async with state.sessionmaker() as session:
        state.posteriors.refresh(await repo.reward_posteriors(session))


async def vault_watch(state: AppState, sec: SecurityState, *, interval_s: float = 1.0) -> None:
    """When the vault auto-locks, drop the decrypted provider keys it had released."""
    while True:
        await asyncio.sleep(interval_s)
        if state.vault_keys and not sec.vault.is_unlocked:
            log.warning("vault auto-locked: vault-backed providers are now ineligible")
            await reload_catalog(state)
            state.metrics.vault_unlocked.set(0)


async def routing_upkeep(state: AppState, *, interval_s: float = 30.0) -> None:
    """Runs for the life of the gateway; a failed refresh is logged, never fatal."""
    try:
        await seed_stats(state)
    except Exception:
        log.exception("could not seed routing stats from the request log")
    while True:
        try:
            await refresh_posteriors(state)
        except Exception:
            log.exception("could not refresh Thompson posteriors")
        await asyncio.sleep(interval_s)


async def cache_sweep(cache: CacheStore, *, interval_s: float) -> None:
    """Delete expired response-cache rows every TOKENHUB_CACHE_SWEEP_INTERVAL_S (the
    database store; Redis expires its own); failures are logged."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await cache.sweep()
        except Exception:
            log.exception("response cache sweep failed (retrying in %.0f s)", interval_s)


async def retention_prune(state: AppState, *, interval_s: float | None = None) -> None:
    """Prune the request, reward and audit logs to the live retention settings every
    TOKENHUB_RETENTION_PRUNE_INTERVAL_S, in small batches (shared/store/retention.py) so
    requests and the request-log writer never wait long on it; failures are logged."""
    interval = interval_s if interval_s is not None else state.settings.retention_prune_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            deleted = await prune(state.sessionmaker, state.retention,
                                  on_deleted=state.metrics.count_pruned)
        except Exception:
            log.exception("retention prune failed (retrying in %.0f s)", interval)
            continue
        if any(deleted.values()):
            log.info("retention prune deleted %s", deleted)
