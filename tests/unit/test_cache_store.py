"""The response cache's one interface on its real backends: SQLite, PostgreSQL, Redis.

Hit, miss, expiry (an injected clock: both backends check an entry's own expiry on read),
replacement, clearing all or one model's entries, and the sweep of expired rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.cache.keys import cache_key
from shared.cache.memory import MemoryFront
from shared.cache.redis_store import RedisCacheStore
from shared.cache.sql import SqlCacheStore
from shared.cache.store import CachedAnswer, CacheStore
from shared.contracts import NormalizedResponse, ResponseMessage, Usage
from shared.store.db import create_engine, create_sessionmaker
from shared.store.migrations import migrate
from tests.store_fixtures import db_url

__all__ = ["db_url"]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def answer(model: str, text: str, now: datetime, ttl_s: int = 60) -> CachedAnswer:
    return CachedAnswer(
        model=model, provider="p", routing_reason="r",
        response=NormalizedResponse(message=ResponseMessage(content=text), finish_reason="stop",
                                    usage=Usage(prompt_tokens=3, completion_tokens=4),
                                    cost_usd=0.001),
        created_at=now, expires_at=now + timedelta(seconds=ttl_s))


@pytest.fixture(params=["database", "redis"])
async def backend(request: pytest.FixtureRequest, db_url: str
                  ) -> AsyncIterator[tuple[CacheStore, Clock]]:
    clock = Clock()
    if request.param == "redis":
        if "postgresql" in db_url:
            pytest.skip("redis runs once (with the sqlite parameter)")
        client = Redis.from_url(REDIS_URL)
        try:
            await client.ping()
        except (RedisError, OSError):
            await client.aclose()
            pytest.skip("Redis is not reachable on 127.0.0.1:6379")
        # the real clock here: Redis expires keys by its own; entries are dated by `clock`
        clock.now = datetime.now(UTC)
        store = RedisCacheStore(client, prefix=f"tokenhub-test:{uuid.uuid4().hex[:8]}:",
                                clock=clock)
        yield store, clock
        await store.clear()
        await store.aclose()
        return
    await migrate(db_url)
    engine = create_engine(db_url)
    yield SqlCacheStore(create_sessionmaker(engine), clock=clock), clock
    await engine.dispose()


def test_the_key_is_canonical_and_covers_what_decides_the_answer() -> None:
    base = {"scope": "key_1", "models": ["m"], "messages": [{"role": "user", "content": "hi"}],
            "parameters": {"temperature": 0.1, "tools": [{"a": 1}]}, "output_format": None}
    k = cache_key(**base)  # type: ignore[arg-type]
    same = cache_key(**{**base, "parameters": {"tools": [{"a": 1}], "temperature": 0.1}})  # type: ignore[arg-type]
    assert k == same and len(k) == 64
    for change in ({"scope": "key_2"}, {"models": ["m", "n"]}, {"parameters": {}},
                   {"messages": [{"role": "user", "content": "hi!"}]},
                   {"output_format": {"type": "json"}}):
        assert cache_key(**{**base, **change}) != k, change  # type: ignore[arg-type]


async def test_hit_miss_replace_and_expiry(backend: tuple[CacheStore, Clock]) -> None:
    store, clock = backend
    assert await store.get("k1") is None  # miss
    await store.put("k1", answer("m1", "first", clock.now))
    got = await store.get("k1")
    assert got is not None and got.response.message.content == "first"
    assert got.fresh(clock.now, 60) and not got.fresh(clock.now + timedelta(seconds=30), 10)
    await store.put("k1", answer("m1", "second", clock.now))  # replaced
    got = await store.get("k1")
    assert got is not None and got.response.message.content == "second"
    clock.now += timedelta(seconds=61)  # past its expiry: a miss
    assert await store.get("k1") is None


async def test_clear_all_or_by_model(backend: tuple[CacheStore, Clock]) -> None:
    store, clock = backend
    for i, model in enumerate(("m1", "m1", "m2")):
        await store.put(f"k{i}", answer(model, f"a{i}", clock.now))
    assert await store.clear("m1") == 2
    assert await store.get("k0") is None and await store.get("k1") is None
    assert await store.get("k2") is not None
    await store.put("k3", answer("m3", "a3", clock.now))
    assert await store.clear() == 2
    assert await store.get("k2") is None and await store.get("k3") is None


async def test_the_database_sweep_deletes_expired_rows_only(
        db_url: str) -> None:
    await migrate(db_url)
    engine = create_engine(db_url)
    clock = Clock()
    store = SqlCacheStore(create_sessionmaker(engine), clock=clock)
    try:
        await store.put("short", answer("m", "s", clock.now, ttl_s=10))
        await store.put("long", answer("m", "l", clock.now, ttl_s=1000))
        clock.now += timedelta(seconds=11)
        assert await store.sweep() == 1
        clock.now = T0  # the swept row is gone, not merely expired
        assert await store.get("short") is None and await store.get("long") is not None
    finally:
        await engine.dispose()


async def test_the_memory_front_is_bounded_checks_expiry_and_forgets(db_url: str) -> None:
    if "postgresql" in db_url:
        pytest.skip("memory only: once")
    clock = Clock()

    class Counting:
        def __init__(self) -> None:
            self.entries: dict[str, CachedAnswer] = {}
            self.gets = 0

        async def get(self, key: str) -> CachedAnswer | None:
            self.gets += 1
            return self.entries.get(key)

        async def put(self, key: str, answer: CachedAnswer) -> None:
            self.entries[key] = answer

        async def clear(self, model: str | None = None) -> int:
            n = len(self.entries)
            self.entries.clear()
            return n

        async def sweep(self) -> int:
            return 0

        async def aclose(self) -> None:
            return None

    back = Counting()
    front = MemoryFront(back, max_entries=2, clock=clock)
    for k in ("a", "b", "c"):
        await front.put(k, answer("m", k, clock.now))
    assert await front.get("b") is not None and await front.get("c") is not None
    assert back.gets == 0  # served from memory
    assert await front.get("a") is not None and back.gets == 1  # evicted (LRU): the store
    front.forget()
    assert await front.get("b") is not None and back.gets == 2
    clock.now += timedelta(seconds=61)
    back.entries.clear()
    assert await front.get("b") is None  # expired in memory, gone from the store
