"""The cache's storage interface and its entry.

An entry is the normalised answer of a successful run (never an error, never an answer
that failed output validation: the request service stores only what it returns with
a 200). Both backends keep ``created_at`` and ``expires_at`` in the entry and check them
against their own clock on read (injectable in tests); Redis also expires the key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel

from shared.contracts import NormalizedResponse


class CachedAnswer(BaseModel):
    """What a hit answers with: the model that produced it and its normalised answer."""

    model: str
    provider: str
    routing_reason: str = ""
    response: NormalizedResponse
    created_at: datetime
    expires_at: datetime

    def fresh(self, now: datetime, max_age_s: float) -> bool:
        """Not expired, and no older than the asking request's TTL."""
        return now < self.expires_at and (now - self.created_at).total_seconds() < max_age_s


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class CacheStore(Protocol):
    """One small interface, two backends (database, Redis)."""

    async def get(self, key: str) -> CachedAnswer | None:
        """The entry under ``key`` unless missing or expired."""
        ...

    async def put(self, key: str, answer: CachedAnswer) -> None:
        """Store (or replace) the entry; it lives until ``answer.expires_at``."""
        ...

    async def clear(self, model: str | None = None) -> int:
        """Delete every entry (or those of ``model``); returns how many."""
        ...

    async def sweep(self) -> int:
        """Delete expired entries (Redis expires them itself: 0)."""
        ...

    async def aclose(self) -> None: ...
