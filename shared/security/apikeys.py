"""Client API keys: issued once as ``thk_…``, stored only as a keyed hash; scopes,
expiry, revocation, rotation and a monthly USD budget.

Why HMAC-SHA256 and not Argon2: the token is 32 random bytes (256 bits of entropy),
so nothing can be guessed or dictionary-attacked; a slow password hash would only add
latency to every request. The HMAC key (pepper) lives outside the database, so a stolen
database alone does not even allow checking a candidate token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.errors import Forbidden, NotFound, Unauthorized
from shared.security.budgets import DEFAULT_TTL_S, BudgetLedger, Reservation, usd
from shared.security.tables import ApiKeyRow

__all__ = ["SCOPES", "ApiKeyInfo", "ApiKeyService", "Principal", "Reservation", "usd"]

SCOPES = ("chat", "plan", "runs", "models", "feedback", "admin")
PREFIX = "thk_"


class ApiKeyInfo(BaseModel):
    """What listing shows: never the token or its hash."""

    id: str
    name: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None
    monthly_budget_usd: float | None
    revoked_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]
    monthly_budget_usd: float | None


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(id=row.id, name=row.name, prefix=row.prefix, scopes=list(row.scopes),
                      expires_at=row.expires_at, monthly_budget_usd=row.monthly_budget_usd,
                      revoked_at=row.revoked_at, created_at=row.created_at)


class ApiKeyService:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, pepper: bytes,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 reservation_ttl_s: float = DEFAULT_TTL_S) -> None:
        self._sm = sessionmaker
        self._pepper = pepper
        self._clock = clock
        self._cache: dict[str, tuple[ApiKeyRow, Principal]] = {}  # hash → row, principal
        self.budgets = BudgetLedger(sessionmaker, clock=clock, ttl_s=reservation_ttl_s)

    def _hash(self, token: str) -> str:
        return hmac.new(self._pepper, token.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _validate_scopes(scopes: list[str]) -> list[str]:
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise Forbidden(f"invalid scopes {bad or scopes}: allowed are {', '.join(SCOPES)}")
        return sorted(set(scopes))

    async def issue(self, *, name: str, scopes: list[str], expires_at: datetime | None = None,
                    monthly_budget_usd: float | None = None) -> tuple[str, ApiKeyInfo]:
        """Returns the full token (shown once) and the stored record."""
        token = PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(id="key_" + secrets.token_hex(8), name=name, prefix=token[:10],
                        hash=self._hash(token), scopes=self._validate_scopes(scopes),
                        expires_at=expires_at, monthly_budget_usd=monthly_budget_usd,
                        created_at=self._clock())
        async with self._sm() as s, s.begin():
            s.add(row)
        return token, _info(row)

    async def list(self) -> list[ApiKeyInfo]:
        async with self._sm() as s:
            rows = (await s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).all()
        return [_info(r) for r in rows]

    async def _row(self, s: AsyncSession, key_id: str) -> ApiKeyRow:
        row = await s.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFound(f"API key {key_id!r} not found")
        return row

    async def rotate(self, key_id: str) -> tuple[str, ApiKeyInfo]:
        """A new token for the same key id; the old token stops working at once."""
        token = PREFIX + secrets.token_urlsafe(32)
        async with self._sm() as s, s.begin():
            row = await self._row(s, key_id)
            if row.revoked_at is not None:
                raise Forbidden(f"API key {key_id!r} is revoked")
            row.hash, row.prefix = self._hash(token), token[:10]
        self._forget(key_id)
        return token, _info(row)

    async def revoke(self, key_id: str) -> ApiKeyInfo:
        async with self._sm() as s, s.begin():
            row = await self._row(s, key_id)
            row.revoked_at = row.revoked_at or self._clock()
        self._forget(key_id)
        return _info(row)

    def _forget(self, key_id: str) -> None:
        for h in [h for h, (_, p) in self._cache.items() if p.key_id == key_id]:
            del self._cache[h]

    async def authenticate(self, token: str | None) -> Principal:
        if not token or not token.startswith(PREFIX):
            raise Unauthorized("missing or malformed API key (expected Bearer thk_…)")
        digest = self._hash(token)
        cached = self._cache.get(digest)
        if cached is None:
            async with self._sm() as s:
                row = (await s.scalars(select(ApiKeyRow).where(ApiKeyRow.hash == digest))
                       ).one_or_none()
            if row is None:
                raise Unauthorized("invalid API key")
            cached = (row, Principal(row.id, frozenset(row.scopes), row.monthly_budget_usd))
            self._cache[digest] = cached
        row, principal = cached
        if row.revoked_at is not None:
            raise Unauthorized("API key revoked")
        if row.expires_at is not None and row.expires_at <= self._clock():
            raise Unauthorized("API key expired")
        return principal

    @staticmethod
    def require_scope(principal: Principal, scope: str) -> None:
        if scope not in principal.scopes and "admin" not in principal.scopes:
            raise Forbidden(f"API key {principal.key_id} lacks the {scope!r} scope")

    # -- budgets (shared by every process on the database: shared/security/budgets.py) ----
    async def reserve(self, principal: Principal, estimated_usd: float) -> Reservation:
        """Hold ``estimated_usd`` before the provider call; refused if spent + held + this
        would exceed the monthly budget (so overspend is bounded by in-flight estimates)."""
        return await self.budgets.reserve(principal.key_id, principal.monthly_budget_usd,
                                          estimated_usd)

    async def settle(self, res: Reservation, actual_usd: float) -> None:
        """Release the hold and charge the actual cost (0 when the call failed)."""
        await self.budgets.settle(res, actual_usd)
