"""The cache in the database (SQLite or PostgreSQL): one row per key, expired rows swept.

Reads are one primary-key SELECT on the gateway's own engine; a write replaces the row
(delete + insert in one transaction: the same statements on both databases).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.cache.store import CachedAnswer, Clock, utc_now
from shared.store.tables import ResponseCacheRow

SWEEP_BATCH = 1000


class SqlCacheStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 clock: Clock = utc_now) -> None:
        self._sm, self._clock = sessionmaker, clock

    async def get(self, key: str) -> CachedAnswer | None:
        async with self._sm() as s:
            value = await s.scalar(select(ResponseCacheRow.value)
                                   .where(ResponseCacheRow.key == key))
        if value is None:
            return None
        answer = CachedAnswer.model_validate_json(value)
        return answer if answer.expires_at > self._clock() else None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(delete(ResponseCacheRow).where(ResponseCacheRow.key == key))
            s.add(ResponseCacheRow(key=key, model=answer.model, created_at=answer.created_at,
                                   expires_at=answer.expires_at,
                                   value=answer.model_dump_json()))

    async def clear(self, model: str | None = None) -> int:
        q = delete(ResponseCacheRow)
        if model is not None:
            q = q.where(ResponseCacheRow.model == model)
        async with self._sm() as s, s.begin():
            res = await s.execute(q)
        return int(getattr(res, "rowcount", 0) or 0)

    async def sweep(self) -> int:
        """Delete expired rows, ``SWEEP_BATCH`` at a time (short transactions)."""
        total = 0
        while True:
            cutoff = self._clock()
            async with self._sm() as s, s.begin():
                keys = (await s.scalars(select(ResponseCacheRow.key)
                                        .where(ResponseCacheRow.expires_at <= cutoff)
                                        .limit(SWEEP_BATCH))).all()
                if keys:
                    await s.execute(delete(ResponseCacheRow)
                                    .where(ResponseCacheRow.key.in_(keys)))
            total += len(keys)
            if len(keys) < SWEEP_BATCH:
                return total

    async def aclose(self) -> None:
        return None
