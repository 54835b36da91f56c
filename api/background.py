"""Background upkeep of the routing state: stats seeded from the request log at start,
Thompson posteriors refreshed from the rewards table periodically."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from api.state import AppState
from shared.store import repo

log = logging.getLogger("tokenhub.background")


async def seed_stats(state: AppState, *, window: timedelta = timedelta(hours=1)) -> None:
    async with state.sessionmaker() as session:
        stats = await repo.model_stats(session, since=datetime.now(UTC) - window)
    state.stats.seed(stats)


async def refresh_posteriors(state: AppState) -> None:
    async with state.sessionmaker() as session:
        state.posteriors.refresh(await repo.reward_posteriors(session))


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
