"""Budgets in the database (issue 13): one ledger for every process on the database, on
SQLite and on the real PostgreSQL; a crashed process's holds expire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.errors import BudgetExceeded
from shared.security.budgets import BudgetLedger
from shared.security.tables import KeyReservationRow
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from tests.store_fixtures import db_url

__all__ = ["db_url"]
KEY = "key_budget"


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[list[AsyncEngine]]:
    """Two engines on one database: what two gateway processes have."""
    await migrate(db_url)
    engs = [create_engine(db_url), create_engine(db_url)]
    yield engs
    for e in engs:
        await e.dispose()


def ledger(engine: AsyncEngine, clock: list[datetime] | None = None,
           ttl_s: float = 900) -> BudgetLedger:
    now = clock or [datetime.now(UTC)]
    return BudgetLedger(create_sessionmaker(engine), clock=lambda: now[0], ttl_s=ttl_s)


async def test_two_ledgers_share_one_budget(engines: list[AsyncEngine]) -> None:
    a, b = ledger(engines[0]), ledger(engines[1])

    async def request(book: BudgetLedger) -> bool:
        try:
            res = await book.reserve(KEY, 0.05, 0.01)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0.01)  # the provider call
        await book.settle(res, 0.01)
        return True

    results = await asyncio.gather(*(request(a if i % 2 else b) for i in range(24)))
    assert sum(results) == 5  # a budget for 5, split over two "processes": none overspent
    assert await a.totals(KEY) == pytest.approx((0.05, 0.0))
    with pytest.raises(BudgetExceeded, match=r"spent \$0.05, reserved \$0.00"):
        await b.reserve(KEY, 0.05, 0.01)


async def test_settle_moves_the_hold_to_the_actual_cost(engines: list[AsyncEngine]) -> None:
    book = ledger(engines[0])
    res = await book.reserve(KEY, 1.0, 0.30)
    assert await book.totals(KEY) == pytest.approx((0.0, 0.30))
    await book.settle(res, 0.12)
    await book.settle(res, 0.12)  # idempotent
    assert await book.totals(KEY) == pytest.approx((0.12, 0.0))
    free = await book.reserve(KEY, None, 0.5)  # a key without a budget: charged, no hold
    await book.settle(free, 0.5)
    assert await book.totals(KEY) == pytest.approx((0.62, 0.0))


async def test_a_crashed_process_holds_expire(engines: list[AsyncEngine]) -> None:
    clock = [datetime(2026, 12, 9, 12, 0, tzinfo=UTC)]
    crashed, alive = ledger(engines[0], clock, ttl_s=60), ledger(engines[1], clock, ttl_s=60)
    held = await crashed.reserve(KEY, 0.10, 0.08)  # ... and its process dies
    with pytest.raises(BudgetExceeded, match=r"reserved \$0.08"):
        await alive.reserve(KEY, 0.10, 0.05)
    clock[0] += timedelta(seconds=61)
    res = await alive.reserve(KEY, 0.10, 0.05)  # the expired hold was released
    assert await alive.totals(KEY) == pytest.approx((0.0, 0.05))
    async with create_sessionmaker(engines[0])() as s:
        assert await s.scalar(select(func.count()).select_from(KeyReservationRow)) == 1
    await alive.settle(res, 0.04)
    await crashed.settle(held, 0.03)  # a late settle still charges, and releases nothing
    assert await alive.totals(KEY) == pytest.approx((0.07, 0.0))
