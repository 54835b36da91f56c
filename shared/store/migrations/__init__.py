"""Alembic migrations, configured programmatically (no alembic.ini or cwd needed)."""

from __future__ import annotations

import asyncio
import fcntl
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).parent
_IN_PROCESS = threading.Lock()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    cfg.attributes["url"] = url
    return cfg


def _prepare_sqlite(url: str) -> str | None:
    """The SQLite file path (its directory created), or None for other databases."""
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            return path
    return None


def migrate_sync(url: str, revision: str = "head") -> None:
    """Upgrade under a lock: several processes (gateway workers, worker) may start at once.
    SQLite: an exclusive file lock next to the database; PostgreSQL: an advisory lock
    taken in env.py."""
    with _IN_PROCESS:  # alembic's `context` proxy is process-global: one run at a time
        _upgrade_locked(url, revision)


def _upgrade_locked(url: str, revision: str) -> None:
    path = _prepare_sqlite(url)
    if path is None:
        command.upgrade(alembic_config(url), revision)
        return
    with open(f"{path}.migrate.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            command.upgrade(alembic_config(url), revision)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


async def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` (idempotent; run on every start)."""
    await asyncio.to_thread(migrate_sync, url, revision)
