"""A small per-process memory in front of the cache's store (database or Redis).

Why: a hit read from the store costs a round trip (SQLite through aiosqlite: ~1 ms of a
busy 2-core box, measured with ``bench/cache.py``), more than the whole gateway's own
work on a hit; the entries a process just served are the ones it is asked for again.
The front keeps the ``max_entries`` most recently used entries (LRU) and checks each
entry's own expiry and the asking request's TTL like the store does. What it cannot see
is another process clearing the store: ``DELETE /admin/v1/cache`` bumps the catalog
version, and every process empties its front when it sees the version move (the same
poll as every admin change, TOKENHUB_CATALOG_POLL_S). A miss in memory asks the store.
"""

from __future__ import annotations

from collections import OrderedDict

from shared.cache.store import CachedAnswer, CacheStore, Clock, utc_now


class MemoryFront:
    def __init__(self, store: CacheStore, *, max_entries: int = 1024,
                 clock: Clock = utc_now) -> None:
        self.store, self._max, self._clock = store, max_entries, clock
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()

    def _keep(self, key: str, answer: CachedAnswer) -> None:
        if self._max <= 0:
            return
        self._entries[key] = answer
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self) -> None:
        """Empty the front (another process may have cleared the store)."""
        self._entries.clear()

    async def get(self, key: str) -> CachedAnswer | None:
        answer = self._entries.get(key)
        if answer is not None:
            if answer.expires_at > self._clock():
                self._entries.move_to_end(key)
                return answer
            del self._entries[key]
        answer = await self.store.get(key)
        if answer is not None:
            self._keep(key, answer)
        return answer

    async def put(self, key: str, answer: CachedAnswer) -> None:
        await self.store.put(key, answer)
        self._keep(key, answer)

    async def clear(self, model: str | None = None) -> int:
        self.forget()
        return await self.store.clear(model)

    async def sweep(self) -> int:
        return await self.store.sweep()

    async def aclose(self) -> None:
        await self.store.aclose()
