"""The store on SQLite and on the real PostgreSQL: migrations, request log, queries."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.contracts import Attempt, RequestRecord, RewardRecord
from shared.store import repo
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.requestlog import RequestLogWriter
from shared.store.schema import metadata
from shared.store.tables import RequestLogRow
from tests.store_fixtures import db_url

__all__ = ["db_url"]
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate(db_url)
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sm(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


def rec(i: int, *, model: str = "m1", status: str = "ok", latency: float = 100.0,
        at: datetime = NOW, key: str | None = None) -> RequestRecord:
    return RequestRecord(
        request_id=f"r{i}", created_at=at, model=model, provider="p", input_tokens=10,
        output_tokens=5, cost_usd=0.01, latency_ms=latency, status=status,  # type: ignore[arg-type]
        api_key_id=key, attempts=[Attempt(model=model, provider="p", outcome="ok")])


async def test_migrations_from_empty_db_match_the_models(db_url: str,
                                                         engine: AsyncEngine) -> None:
    await migrate(db_url)  # idempotent: a second run is a no-op
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        diff = await conn.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), metadata))
    assert {"providers", "models", "aliases", "request_log", "rewards",
            "alembic_version"} <= tables
    assert diff == []


async def test_batched_writer_writes_every_row(db_url: str,
                                               sm: async_sessionmaker[AsyncSession]) -> None:
    writer = RequestLogWriter(db_url, batch_size=7, interval_s=0.01)
    await writer.start()
    for i in range(50):
        writer.submit(rec(i), [RewardRecord(request_id=f"r{i}", created_at=NOW, model="m1",
                                            size_bucket="small", reward=0.5, success=True)])
    await writer.aclose()  # drains
    async with sm() as s:
        page, cursor = await repo.list_requests(s, limit=20)
        rows = (await s.scalars(select(RequestLogRow))).all()
        posteriors = await repo.reward_posteriors(s)
    assert len(rows) == 50
    assert [r.request_id for r in page] == [f"r{i}" for i in range(49, 29, -1)]
    assert page[0].created_at == NOW and page[0].attempts[0].model == "m1"
    assert cursor is not None
    async with sm() as s:
        nxt, _ = await repo.list_requests(s, limit=20, before_id=cursor)
    assert nxt[0].request_id == "r29"
    post = posteriors[("m1", "small")]
    assert post.alpha == pytest.approx(26) and post.beta == pytest.approx(26)


async def test_write_now_and_queries(db_url: str, sm: async_sessionmaker[AsyncSession]) -> None:
    writer = RequestLogWriter(db_url)
    await writer.start()
    for i, (model, status, lat) in enumerate([("a", "ok", 100), ("a", "ok", 300),
                                               ("a", "error", 0), ("b", "ok", 50)]):
        await writer.write_now(rec(i, model=model, status=status, latency=lat, key="k1"))
    await writer.write_now(rec(9, model="a", at=NOW - timedelta(days=60)))
    await writer.aclose()
    async with sm() as s:
        stats = await repo.model_stats(s, since=NOW - timedelta(days=1))
        spent = await repo.monthly_cost(s, api_key_id="k1", since=NOW - timedelta(days=1))
        found = await repo.get_requests(s, request_id="r3")
        pruned = await repo.prune(s, older_than=NOW - timedelta(days=30))
    assert stats["a"].latency_ms == pytest.approx(200)
    assert stats["a"].failure_rate == pytest.approx(1 / 3) and stats["a"].samples == 3
    assert stats["b"].failure_rate == 0
    assert spent == pytest.approx(0.04)
    assert found[0].model == "b"
    assert pruned == 1


async def test_concurrent_migrations_do_not_race(db_url: str) -> None:
    import asyncio

    await asyncio.gather(*(migrate(db_url) for _ in range(4)))  # gateway workers at once
    eng = create_engine(db_url)
    async with eng.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await eng.dispose()
    assert "request_log" in tables


async def test_sqlite_wal_is_checkpointed_off_the_commit_path(tmp_path: Path) -> None:
    """SQLite: the writer's commits never checkpoint (that waits for fsyncs); its side task
    does, on its own connection, every ``checkpoint_s``."""
    db = tmp_path / "t.db"
    url = f"sqlite+aiosqlite:///{db}"
    await migrate(url)
    base = db.stat().st_size
    rows = [rec(i) for i in range(6000)]  # well over SQLite's 1000-page auto-checkpoint

    writer = RequestLogWriter(url, checkpoint_s=3600)
    await writer.start()
    for r in rows[:3000]:
        writer.submit(r)
    await writer.flush()
    assert db.stat().st_size == base  # every row still in the WAL: no commit checkpointed
    async with writer._engine.connect() as conn:  # the writer's own connections
        auto = (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
    assert auto == 0
    await writer.aclose()

    writer = RequestLogWriter(url, checkpoint_s=0.05)
    await writer.start()
    for r in rows[3000:]:
        writer.submit(r)
    await writer.flush()
    for _ in range(100):  # up to 5 s for the side task's next round
        if db.stat().st_size > base:
            break
        await asyncio.sleep(0.05)
    await writer.aclose()
    assert db.stat().st_size > base  # the side task moved the pages into the database
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM request_log").fetchone()[0] == 6000
