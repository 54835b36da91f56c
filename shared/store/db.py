"""Engine and session factories (built by entrypoints, never at import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create


def create_engine(url: str, *, wal_autocheckpoint: bool = True, **kwargs: Any) -> AsyncEngine:
    """SQLite: WAL + busy timeout so the gateway and the worker share one file
    (``wal_autocheckpoint=False``: this engine's commits never checkpoint; its owner
    checkpoints on another connection). PostgreSQL: pre-ping pooled connections."""
    if url.startswith("sqlite"):
        engine = _create(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            if not wal_autocheckpoint:
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        return engine
    return _create(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
