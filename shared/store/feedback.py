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

from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


async def _owned_request(s: AsyncSession, request_id: str,
                         api_key_id: str | None, check_owner: bool) -> RequestLogRow:
    row = (await s.scalars(select(RequestLogRow).where(RequestLogRow.request_id == request_id)
                           .order_by(RequestLogRow.id.desc()).limit(1))).first()
    if row is None or (check_owner and row.api_key_id != api_key_id):
        raise NotFound(f"request {request_id!r} not found (unknown, past the request log's "
                       "retention, or not made with this API key)")
    return row


async def rate(sessionmaker: async_sessionmaker[AsyncSession], rating: Rating, *,
               api_key_id: str | None, check_owner: bool, weight: float,
               now: datetime) -> tuple[FeedbackInfo, bool]:
    """Store ``rating`` and its reward row; returns it and whether it was new (False: it
    replaced an earlier one). 404 unknown / not this key's request; 409 already rated by
    this source (unless ``replace``)."""
    reward_source = f"feedback:{rating.source}"
    try:
        async with sessionmaker() as s, s.begin():
            req = await _owned_request(s, rating.request_id, api_key_id, check_owner)
            row = (await s.scalars(select(FeedbackRow).where(
                FeedbackRow.request_id == rating.request_id,
                FeedbackRow.source == rating.source))).first()
            created = row is None
            if row is not None and not rating.replace:
                raise Conflict(f"request {rating.request_id!r} already has feedback from "
                               f"source {rating.source!r} (send \"replace\": true to change it)")
            if row is None:
                row = FeedbackRow(request_id=rating.request_id, source=rating.source,
                                  created_at=now)
                s.add(row)
            else:
                await s.execute(delete(RewardRow).where(
                    RewardRow.request_id == rating.request_id, RewardRow.source == reward_source))
            row.api_key_id, row.score, row.thumbs = req.api_key_id, rating.score, rating.thumbs
            row.comment, row.model, row.updated_at = rating.comment, req.model, now
            row.size_bucket = req.size_bucket or "small"
            rewarded = req.model is not None and weight > 0
            if rewarded:
                s.add(RewardRow(request_id=rating.request_id, created_at=now, model=req.model,
                                size_bucket=row.size_bucket, reward=rating.score,
                                success=rating.score >= 0.5, source=reward_source,
                                weight=weight))
            await s.flush()
            info = _info(row, weight if rewarded else 0.0)
    except IntegrityError:  # a concurrent first rating from the same source won
        raise Conflict(f"request {rating.request_id!r} already has feedback from source "
                       f"{rating.source!r}") from None
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
