"""Feedback: ``POST /v1/feedback`` rates a request, ``GET /v1/feedback?request_id=`` reads
its ratings (scope ``feedback``; a key sees and rates only its own requests).

The handle is the request id every answer carries (``X-Request-ID``; ``request_id`` of the
native answer, ``id`` = ``chatcmpl-<request id>`` of the OpenAI-compatible one). A rating
becomes a reward row of the model that answered (shared/store/feedback.py), weighted by
TOKENHUB_FEEDBACK_WEIGHT, which the Thompson posteriors read at their next refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response

from api.deps import FeedbackCtx
from api.responses import JSONResponse
from shared.errors import NotFound
from shared.store import feedback as store
from shared.store.feedback import THUMB_SCORES, FeedbackInfo, Rating

router = APIRouter(tags=["feedback"])

SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$"
WRITE_WAIT_S = 0.25  # a rating sent right after the answer: the row may be on its way
T = TypeVar("T")


class FeedbackIn(BaseModel):
    """``score`` (0 … 1) or ``thumbs`` (up = 1, down = 0), not both."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    request_id: str = Field(min_length=1, max_length=128)
    score: float | None = Field(default=None, ge=0, le=1)
    thumbs: Literal["up", "down"] | None = None
    comment: str | None = Field(default=None, max_length=4096)
    source: str = Field(default="user", pattern=SOURCE_PATTERN)
    replace: bool = False

    @model_validator(mode="after")
    def _one_rating(self) -> FeedbackIn:
        if self.score is not None and self.thumbs is not None:
            raise ValueError("score, thumbs: give one of them, not both")
        if self.score is None and self.thumbs is None:
            raise ValueError("score, thumbs: one of them is required")
        return self


class FeedbackList(BaseModel):
    request_id: str
    data: list[FeedbackInfo]


async def _logged(ctx: FeedbackCtx, op: Callable[[], Awaitable[T]]) -> T:
    """``op``, once more after a moment if the request is not found while this process
    still has request-log rows on their way to the database (batched writes)."""
    try:
        return await op()
    except NotFound:
        if not ctx.state.log_writer.writing:
            raise
    await asyncio.sleep(WRITE_WAIT_S)
    return await op()


@router.post("/v1/feedback", status_code=201, response_model=FeedbackInfo,
             summary="Rate a request's answer (a reward for the model that gave it)")
async def post_feedback(body: FeedbackIn, ctx: FeedbackCtx) -> Response:
    score = body.score if body.score is not None else THUMB_SCORES[body.thumbs or "down"]
    rating = Rating(request_id=body.request_id, score=score, thumbs=body.thumbs,
                    comment=body.comment, source=body.source, replace=body.replace)
    key_id = ctx.principal.key_id if ctx.principal else None
    info, created = await _logged(ctx, lambda: store.rate(
        ctx.state.sessionmaker, rating, api_key_id=key_id, check_owner=True,
        weight=ctx.state.settings.feedback_weight, now=datetime.now(UTC)))
    return JSONResponse(info.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/v1/feedback", response_model=FeedbackList,
            summary="The ratings of a request")
async def get_feedback(ctx: FeedbackCtx,
                       request_id: str = Query(min_length=1, max_length=128)) -> Response:
    key_id = ctx.principal.key_id if ctx.principal else None
    data = await _logged(ctx, lambda: store.ratings(
        ctx.state.sessionmaker, request_id=request_id, api_key_id=key_id, check_owner=True))
    return JSONResponse({"request_id": request_id,
                         "data": [d.model_dump(mode="json") for d in data]})
