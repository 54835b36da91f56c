"""Feedback on a request (``POST /v1/feedback``): the rating and the reward row it adds.

A rating is tied to the model that answered the request and the run's size bucket (both
read from its request-log row), and written with a reward row (``source =
"feedback:<source>"``, ``weight`` = TOKENHUB_FEEDBACK_WEIGHT) that the Thompson posteriors
pick up at their next refresh (shared/store/repo.py: ``reward_posteriors``). One rating
per (request, source); ``replace`` swaps the rating and its reward row in one transaction.
The request must still be in the request log (retention), and belong to the API key
asking (else it is "not found", as an unknown id: a key learns nothing of other keys').
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from shared.errors import Conflict, NotFound
from shared.store.tables import FeedbackRow, RequestLogRow, RewardRow

Thumbs = Literal["up", "down"]
THUMB_SCORES: dict[str, float] = {"up": 1.0, "down": 0.0}


class Rating(BaseModel):
    """A validated rating (the route checks the wire body)."""

    request_id: str
    score: float  # 0..1 (thumbs up = 1, down = 0)
    thumbs: Thumbs | None = None
    comment: str | None = None
    source: str = "user"
    replace: bool = False


class FeedbackInfo(BaseModel):
    request_id: str
    source: str
    score: float
    thumbs: str | None
    comment: str | None
    model: str | None
    size_bucket: str | None
    weight: float  # what the reward row counts in the posterior (0: no reward row)
    created_at: datetime
    updated_at: datetime


def _info(row: FeedbackRow, weight: float) -> FeedbackInfo:
    return FeedbackInfo(request_id=row.request_id, source=row.source, score=row.score,
                        thumbs=row.thumbs, comment=row.comment, model=row.model,
                        size_bucket=row.size_bucket, weight=weight,
                        created_at=row.created_at, updated_at=row.updated_at)


@dataclass(frozen=True)
class _Request:
    api_key_id: str | None
    model: str | None
    size_bucket: str


# Built once (static SQL with bound parameters): building a statement per call cost more
# CPU than running it (SQLAlchemy's ``values()`` coercion, measured with cProfile).
_REQUEST = (select(RequestLogRow.api_key_id, RequestLogRow.model, RequestLogRow.size_bucket)
            .where(RequestLogRow.request_id == bindparam("rid"))
            .order_by(RequestLogRow.id.desc()).limit(1))
_INSERT_RATING = insert(FeedbackRow)
_INSERT_REWARD = insert(RewardRow)


async def _owned_request(s: AsyncSession | AsyncConnection, request_id: str,
                         api_key_id: str | None, check_owner: bool) -> _Request:
    row = (await s.execute(_REQUEST, {"rid": request_id})).first()
    if row is None or (check_owner and row.api_key_id != api_key_id):
        raise NotFound(f"request {request_id!r} not found (unknown, past the request log's "
                       "retention, or not made with this API key)")
    return _Request(row.api_key_id, row.model, row.size_bucket or "small")


def _engine(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    engine = sessionmaker.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    return engine


def _conflict(rating: Rating) -> Conflict:
    return Conflict(f"request {rating.request_id!r} already has feedback from source "
                    f"{rating.source!r} (send \"replace\": true to change it)")


async def rate(sessionmaker: async_sessionmaker[AsyncSession], rating: Rating, *,
               api_key_id: str | None, check_owner: bool, weight: float,
               now: datetime) -> tuple[FeedbackInfo, bool]:
    """Store ``rating`` and its reward row; returns it and whether it was new (False: it
    replaced an earlier one). 404 unknown / not this key's request; 409 already rated by
    this source (unless ``replace``).

    One short transaction of Core statements: the request-log lookup, then the rating and
    its reward row inserted (a first rating from a source relies on the unique constraint
    rather than a read first; a replace updates the rating and swaps its reward row).
    Measured with ``bench/cache.py``'s feedback point."""
    reward_source = f"feedback:{rating.source}"
    created_at, created = now, True
    try:
        async with _engine(sessionmaker).begin() as s:  # Core only: no ORM session
            req = await _owned_request(s, rating.request_id, api_key_id, check_owner)
            values = {"api_key_id": req.api_key_id, "score": rating.score,
                      "thumbs": rating.thumbs, "comment": rating.comment, "model": req.model,
                      "size_bucket": req.size_bucket, "updated_at": now}
            mine = (FeedbackRow.request_id == rating.request_id,
                    FeedbackRow.source == rating.source)
            if rating.replace:
                earlier = (await s.execute(select(FeedbackRow.created_at).where(*mine))).first()
                if earlier is not None:
                    created_at, created = earlier.created_at, False
                    await s.execute(update(FeedbackRow).where(*mine).values(**values))
                    await s.execute(delete(RewardRow).where(
                        RewardRow.request_id == rating.request_id,
                        RewardRow.source == reward_source))
            if created:
                await s.execute(_INSERT_RATING, {
                    "request_id": rating.request_id, "source": rating.source,
                    "created_at": now, **values})
            rewarded = req.model is not None and weight > 0
            if rewarded:
                await s.execute(_INSERT_REWARD, {
                    "request_id": rating.request_id, "created_at": now, "model": req.model,
                    "size_bucket": req.size_bucket, "reward": rating.score,
                    "success": rating.score >= 0.5, "source": reward_source,
                    "weight": weight, "cost_usd": 0.0, "latency_ms": 0.0})
    except IntegrityError:  # rated before by this source (or a concurrent first rating)
        raise _conflict(rating) from None
    info = FeedbackInfo(request_id=rating.request_id, source=rating.source, score=rating.score,
                        thumbs=rating.thumbs, comment=rating.comment, model=req.model,
                        size_bucket=req.size_bucket, weight=weight if rewarded else 0.0,
                        created_at=created_at, updated_at=now)
    return info, created


async def ratings(sessionmaker: async_sessionmaker[AsyncSession], *, request_id: str,
                  api_key_id: str | None, check_owner: bool) -> list[FeedbackInfo]:
    """Every rating of a request (404 as for :func:`rate`), oldest first."""
    async with sessionmaker() as s:
        await _owned_request(s, request_id, api_key_id, check_owner)
        rows = (await s.scalars(select(FeedbackRow).where(FeedbackRow.request_id == request_id)
                                .order_by(FeedbackRow.id))).all()
        weights = {r.source: r.weight for r in (await s.scalars(select(RewardRow).where(
            RewardRow.request_id == request_id, RewardRow.source.is_not(None)))).all()}
    return [_info(r, weights.get(f"feedback:{r.source}", 0.0)) for r in rows]
