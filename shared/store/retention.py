"""Retention: what the request log, the reward log and the audit log keep, and the prune.

Each table keeps rows younger than ``days`` and/or its newest ``rows`` rows (either may be
unset; both set: a row goes when either says so). Defaults (environment, then
``PUT /admin/v1/retention``): request log 30 days, rewards 90 days, audit 365 days, no row
cap. Documented minimums, refused below (400): 1 day and 1,000 rows for the request and
reward logs, 30 days and 10,000 rows for the audit log (it is the security record).

The prune deletes in small batches (``BATCH`` rows by primary key, each batch its own short
transaction, a pause between batches), so it never holds a lock long enough to block the
request-log writer or a request: on SQLite each batch is one short write transaction, on
PostgreSQL row locks on the batch only. Same statements on both databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from shared.security.tables import AuditRow
from shared.store.tables import FeedbackRow, RequestLogRow, RewardRow

BATCH = 1000
PAUSE_S = 0.005  # between batches: lets the request-log writer and requests in
TABLES = ("request_log", "rewards", "audit")
MINIMUM: dict[str, tuple[float, int]] = {  # (days, rows)
    "request_log": (1, 1000), "rewards": (1, 1000), "audit": (30, 10_000)}


class TableRetention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: float | None = Field(default=None, gt=0)
    rows: int | None = Field(default=None, gt=0)


class RetentionConfig(BaseModel):
    """``GET/PUT /admin/v1/retention``."""

    model_config = ConfigDict(extra="forbid")

    request_log: TableRetention = Field(default_factory=lambda: TableRetention(days=30))
    rewards: TableRetention = Field(default_factory=lambda: TableRetention(days=90))
    audit: TableRetention = Field(default_factory=lambda: TableRetention(days=365))

    @model_validator(mode="after")
    def _minimums(self) -> RetentionConfig:
        for name in TABLES:
            t: TableRetention = getattr(self, name)
            min_days, min_rows = MINIMUM[name]
            if t.days is not None and t.days < min_days:
                raise ValueError(f"{name}.days: {t.days:g} is below the minimum of "
                                 f"{min_days:g} day(s)")
            if t.rows is not None and t.rows < min_rows:
                raise ValueError(f"{name}.rows: {t.rows} is below the minimum of {min_rows}")
        return self

    def merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` laid over this config, per table (a table given replaces it)."""
        return {**self.model_dump(), **changes}


def _table(name: str) -> tuple[Any, InstrumentedAttribute[Any], InstrumentedAttribute[Any]]:
    if name == "request_log":
        return RequestLogRow, RequestLogRow.id, RequestLogRow.created_at
    if name == "rewards":
        return RewardRow, RewardRow.id, RewardRow.created_at
    if name == "feedback":
        return FeedbackRow, FeedbackRow.id, FeedbackRow.created_at
    return AuditRow, AuditRow.id, AuditRow.at


async def _boundary(session: AsyncSession, name: str, keep: TableRetention,
                    now: datetime) -> tuple[int | None, datetime | None]:
    """(highest id to drop by the row cap, time before which rows go)."""
    _, id_col, _ = _table(name)
    max_id = None
    if keep.rows is not None:
        max_id = await session.scalar(
            select(id_col).order_by(id_col.desc()).offset(keep.rows).limit(1))
    cutoff = now - timedelta(days=keep.days) if keep.days is not None else None
    return max_id, cutoff


async def _delete_batch(session: AsyncSession, name: str, max_id: int | None,
                        cutoff: datetime | None, batch: int) -> int:
    table, id_col, time_col = _table(name)
    cond: ColumnElement[bool]
    if max_id is not None and cutoff is not None:
        cond = (id_col <= max_id) | (time_col < cutoff)
    elif max_id is not None:
        cond = id_col <= max_id
    else:
        cond = time_col < cutoff
    ids = list((await session.scalars(select(id_col).where(cond).order_by(id_col)
                                      .limit(batch))).all())
    if not ids:
        return 0
    await session.execute(delete(table).where(id_col.in_(ids)))
    return len(ids)


async def prune_table(sessionmaker: async_sessionmaker[AsyncSession], name: str,
                      keep: TableRetention, *, now: datetime | None = None,
                      batch: int = BATCH, pause_s: float = PAUSE_S,
                      max_batches: int | None = None) -> int:
    """Delete what ``keep`` does not keep from table ``name``, ``batch`` rows per
    transaction; returns the rows deleted."""
    if keep.days is None and keep.rows is None:
        return 0
    when = now or datetime.now(UTC)
    async with sessionmaker() as s:
        max_id, cutoff = await _boundary(s, name, keep, when)
    if max_id is None and cutoff is None:
        return 0
    total, batches = 0, 0
    while max_batches is None or batches < max_batches:
        async with sessionmaker() as s, s.begin():
            n = await _delete_batch(s, name, max_id, cutoff, batch)
        total += n
        batches += 1
        if n < batch:
            break
        await asyncio.sleep(pause_s)
    return total


async def prune(sessionmaker: async_sessionmaker[AsyncSession], config: RetentionConfig, *,
                now: datetime | None = None, batch: int = BATCH, pause_s: float = PAUSE_S,
                on_deleted: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """One prune pass over every table; {table: rows deleted}. Ratings (``feedback``) are
    kept as long as request-log rows (a rating is reachable only through its request)."""
    out: dict[str, int] = {}
    keeps = [(name, getattr(config, name)) for name in TABLES]
    keeps.append(("feedback", TableRetention(days=config.request_log.days)))
    for name, keep in keeps:
        n = await prune_table(sessionmaker, name, keep, now=now, batch=batch,
                              pause_s=pause_s)
        out[name] = n
        if on_deleted is not None and n:
            on_deleted(name, n)
    return out
