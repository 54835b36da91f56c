"""The cache in Redis (``TOKENHUB_CACHE_URL=redis://…``): shared by every gateway process
and host, expired by Redis itself.

An entry is one string key (``<prefix>e:<hash>``, ``PX`` = its time to live); each model
has a set of its entries' keys (``<prefix>m:<model>``) so ``DELETE /admin/v1/cache?model=``
need not scan; clearing everything scans the prefix.
"""

from __future__ import annotations

import math

from redis.asyncio import Redis

from shared.cache.store import CachedAnswer, Clock, utc_now

DEFAULT_PREFIX = "tokenhub:cache:"


class RedisCacheStore:
    def __init__(self, client: Redis, *, prefix: str = DEFAULT_PREFIX,
                 clock: Clock = utc_now) -> None:
        self._r, self._prefix, self._clock = client, prefix, clock

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX,
                 clock: Clock = utc_now) -> RedisCacheStore:
        return cls(Redis.from_url(url), prefix=prefix, clock=clock)

    def _entry(self, key: str) -> str:
        return f"{self._prefix}e:{key}"

    def _model(self, model: str) -> str:
        return f"{self._prefix}m:{model}"

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._r.get(self._entry(key))
        if raw is None:
            return None
        answer = CachedAnswer.model_validate_json(raw)
        return answer if answer.expires_at > self._clock() else None

    async def put(self, key: str, answer: CachedAnswer) -> None:
        ttl_ms = math.ceil((answer.expires_at - self._clock()).total_seconds() * 1000)
        if ttl_ms <= 0:
            return
        entry, index = self._entry(key), self._model(answer.model)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(entry, answer.model_dump_json(), px=ttl_ms)
            pipe.sadd(index, entry)
            pipe.pexpire(index, ttl_ms, gt=True)  # the index outlives its newest entry
            pipe.pexpire(index, ttl_ms, nx=True)
            await pipe.execute()

    async def clear(self, model: str | None = None) -> int:
        if model is not None:
            index = self._model(model)
            members = list(await self._r.smembers(index))
            deleted = int(await self._r.unlink(*members)) if members else 0
            await self._r.unlink(index)
            return deleted
        deleted = 0
        batch: list[bytes] = []
        async for name in self._r.scan_iter(match=f"{self._prefix}*", count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                deleted += await self._count_entries(batch)
                batch = []
        if batch:
            deleted += await self._count_entries(batch)
        return deleted

    async def _count_entries(self, names: list[bytes]) -> int:
        await self._r.unlink(*names)
        entry = f"{self._prefix}e:".encode()
        return sum(1 for n in names if n.startswith(entry))

    async def sweep(self) -> int:
        return 0

    async def aclose(self) -> None:
        await self._r.aclose()
