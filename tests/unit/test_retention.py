"""Retention on SQLite and PostgreSQL: validation of the settings (documented minimums),
the batched prune by age and by row count, the runtime config round trip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.catalog import retention_from_settings
from shared.config import Settings
from shared.security.tables import AuditRow
from shared.store import catalog as store_catalog
from shared.store import runtime as store_runtime
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from shared.store.retention import RetentionConfig, TableRetention, prune, prune_table
from shared.store.tables import RequestLogRow, RewardRow
from tests.store_fixtures import db_url

__all__ = ["db_url"]
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def sm(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await migrate(db_url)
    engine = create_engine(db_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _fill(sm: async_sessionmaker[AsyncSession], *, old: int, new: int) -> None:
    def row(i: int, at: datetime) -> dict[str, object]:
        return {"request_id": f"r{i}", "created_at": at, "kind": "chat", "status": "ok",
                "executor": "local", "attempts": [], "input_tokens": 0, "output_tokens": 0,
                "cost_usd": 0.0, "latency_ms": 0.0, "http_status": 200}
    rows = [row(i, NOW - timedelta(days=40)) for i in range(old)]
    rows += [row(old + i, NOW - timedelta(hours=1)) for i in range(new)]
    async with sm() as s, s.begin():
        await s.execute(insert(RequestLogRow), rows)
        await s.execute(insert(RewardRow), [
            {"request_id": "x", "created_at": NOW - timedelta(days=100), "model": "m",
             "size_bucket": "small", "reward": 0.5, "success": True, "cost_usd": 0.0,
             "latency_ms": 1.0}] * 5)
        await s.execute(insert(AuditRow), [
            {"at": NOW - timedelta(days=400), "actor": "admin", "action": "x", "outcome": "ok",
             "detail": {}}] * 3)


async def _count(sm: async_sessionmaker[AsyncSession], table: type) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


async def test_prune_by_age_in_batches_keeps_the_young_rows(
        sm: async_sessionmaker[AsyncSession]) -> None:
    await _fill(sm, old=2500, new=10)
    deleted = await prune(sm, RetentionConfig(), now=NOW, batch=1000, pause_s=0)
    assert deleted == {"request_log": 2500, "rewards": 5, "audit": 3,
                       "feedback": 0}
    assert await _count(sm, RequestLogRow) == 10


async def test_prune_by_row_count_keeps_the_newest(
        sm: async_sessionmaker[AsyncSession]) -> None:
    await _fill(sm, old=0, new=2300)
    n = await prune_table(sm, "request_log", TableRetention(rows=1000), now=NOW, batch=500,
                          pause_s=0)
    assert n == 1300 and await _count(sm, RequestLogRow) == 1000
    async with sm() as s:
        assert await s.scalar(select(func.min(RequestLogRow.request_id))) == "r1300"


async def test_prune_stops_after_max_batches(sm: async_sessionmaker[AsyncSession]) -> None:
    await _fill(sm, old=300, new=0)
    n = await prune_table(sm, "request_log", TableRetention(days=1), now=NOW, batch=100,
                          pause_s=0, max_batches=2)
    assert n == 200 and await _count(sm, RequestLogRow) == 100


async def test_runtime_config_is_stored_with_a_catalog_version_bump(
        sm: async_sessionmaker[AsyncSession]) -> None:
    async with sm() as s:
        before = await store_catalog.read_version(s)
    async with sm() as s, s.begin():
        await store_runtime.put(s, key="retention", value={"audit": {"days": 400}})
    async with sm() as s:
        assert await store_catalog.read_version(s) == before + 1
        assert (await store_runtime.load(s))["retention"] == {"audit": {"days": 400}}


@pytest.mark.parametrize("body, field", [
    ({"request_log": {"days": 0.5}}, "request_log.days"),
    ({"rewards": {"rows": 10}}, "rewards.rows"),
    ({"audit": {"days": 7}}, "audit.days"),
])
def test_retention_below_the_minimum_is_refused_naming_the_field(body: dict,
                                                                  field: str) -> None:
    with pytest.raises(ValidationError) as info:
        RetentionConfig.model_validate(RetentionConfig().merged(body))
    assert f"{field}:" in str(info.value) and "below the minimum" in str(info.value)


def test_retention_defaults_come_from_the_environment() -> None:
    s = Settings(_env_file=None, retention_request_log_days=7,  # type: ignore[call-arg]
                 retention_audit_rows=50_000)
    cfg = retention_from_settings(s)
    assert cfg.request_log.days == 7 and cfg.rewards.days == 90
    assert cfg.audit.days == 365 and cfg.audit.rows == 50_000
