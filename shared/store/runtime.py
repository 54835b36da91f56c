"""Runtime settings stored in the database (``runtime_config``: one JSON value per key).

A change is written in the transaction that bumps the catalog version
(:func:`shared.store.catalog.bump_version`), so every process reloads it with the
catalog (shared/catalog.py) and no process needs a restart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.store.catalog import bump_version
from shared.store.tables import RuntimeConfigRow

ROUTING = "routing"
RETENTION = "retention"


async def load(session: AsyncSession) -> dict[str, dict[str, Any]]:
    rows = (await session.scalars(select(RuntimeConfigRow))).all()
    return {r.key: dict(r.value or {}) for r in rows}


async def put(session: AsyncSession, *, key: str, value: dict[str, Any]) -> None:
    """Store ``value`` under ``key`` and bump the catalog version (same transaction)."""
    row = await session.get(RuntimeConfigRow, key)
    if row is None:
        session.add(RuntimeConfigRow(key=key, value=value))
    else:
        row.value = value
    await bump_version(session)
