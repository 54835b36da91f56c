"""Audit log of admin changes: who, what, when, from where, outcome. Never a secret."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.security.redact import redact_value
from shared.security.tables import AuditRow


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    client_ip: str | None
    outcome: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def record(self, *, actor: str, action: str, target: str | None,
                     client_ip: str | None, outcome: str = "ok",
                     detail: dict[str, Any] | None = None) -> None:
        async with self._sm() as s, s.begin():
            s.add(AuditRow(actor=actor, action=action, target=target, client_ip=client_ip,
                           outcome=outcome, detail=redact_value(detail or {})))

    async def list(self, *, limit: int = 50,
                   before_id: int | None = None) -> tuple[list[AuditEntry], int | None]:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
        if before_id is not None:
            q = q.where(AuditRow.id < before_id)
        async with self._sm() as s:
            rows = list((await s.scalars(q)).all())
        cursor = rows[limit - 1].id if len(rows) > limit else None
        return [AuditEntry.model_validate(r, from_attributes=True) for r in rows[:limit]], cursor
