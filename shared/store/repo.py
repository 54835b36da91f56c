"""Queries (keyword-only arguments): request log, stats seeding, reward posteriors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, case, cast, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import RequestRecord
from shared.routing.types import BetaPosterior, ModelStats
from shared.store.tables import IdempotencyRow, RequestLogRow, RewardRow


def _record(row: RequestLogRow) -> RequestRecord:
    data: dict[str, Any] = {c: getattr(row, c) for c in RequestRecord.model_fields}
    return RequestRecord.model_validate(data)


async def list_requests(session: AsyncSession, *, limit: int = 50,
                        before_id: int | None = None) -> tuple[list[RequestRecord], int | None]:
    """Newest first; returns (page, cursor for the next page or None)."""
    q = select(RequestLogRow).order_by(RequestLogRow.id.desc()).limit(limit + 1)
    if before_id is not None:
        q = q.where(RequestLogRow.id < before_id)
    rows = list((await session.scalars(q)).all())
    cursor = rows[limit - 1].id if len(rows) > limit else None
    return [_record(r) for r in rows[:limit]], cursor


async def get_requests(session: AsyncSession, *, request_id: str) -> list[RequestRecord]:
    q = select(RequestLogRow).where(RequestLogRow.request_id == request_id) \
        .order_by(RequestLogRow.id)
    return [_record(r) for r in (await session.scalars(q)).all()]


async def model_stats(session: AsyncSession, *, since: datetime) -> dict[str, ModelStats]:
    """Mean latency of successful calls and failure rate per model, to seed rolling stats."""
    ok = case((RequestLogRow.status == "ok", 1), else_=0)
    q = (select(RequestLogRow.model, func.count(),
                func.sum(ok),
                func.avg(case((RequestLogRow.status == "ok", RequestLogRow.latency_ms))),
                func.avg(case((RequestLogRow.status == "ok", RequestLogRow.output_tokens))))
         .where(RequestLogRow.created_at >= since, RequestLogRow.model.is_not(None))
         .group_by(RequestLogRow.model))
    out: dict[str, ModelStats] = {}
    for model, n, oks, lat, outs in (await session.execute(q)).all():
        out[str(model)] = ModelStats(latency_ms=float(lat) if lat is not None else None,
                                     failure_rate=(n - (oks or 0)) / n if n else 0.0,
                                     samples=int(n),
                                     output_tokens=float(outs) if outs is not None else None)
    return out


async def reward_posteriors(session: AsyncSession) -> dict[tuple[str, str], BetaPosterior]:
    """Beta(1 + Σ w·reward, 1 + Σ w·(1 − reward)) per (model, size bucket); ``w`` is the
    row's weight: 1 for the automatic rewards, TOKENHUB_FEEDBACK_WEIGHT for a user's."""
    weight = cast(RewardRow.weight, Float)
    q = (select(RewardRow.model, RewardRow.size_bucket,
                func.sum(weight * cast(RewardRow.reward, Float)), func.sum(weight))
         .group_by(RewardRow.model, RewardRow.size_bucket))
    out: dict[tuple[str, str], BetaPosterior] = {}
    for model, bucket, total, n in (await session.execute(q)).all():
        s, w = float(total or 0), float(n or 0)
        out[(str(model), str(bucket))] = BetaPosterior(alpha=1 + s, beta=1 + max(w - s, 0.0))
    return out


async def list_rewards(session: AsyncSession, *, limit: int = 50, before_id: int | None = None,
                       model: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Reward rows, newest first; returns (page, cursor for the next page or None)."""
    q = select(RewardRow).order_by(RewardRow.id.desc()).limit(limit + 1)
    if before_id is not None:
        q = q.where(RewardRow.id < before_id)
    if model is not None:
        q = q.where(RewardRow.model == model)
    rows = list((await session.scalars(q)).all())
    cursor = rows[limit - 1].id if len(rows) > limit else None
    page = [{"id": r.id, "request_id": r.request_id, "created_at": r.created_at.isoformat(),
             "model": r.model, "size_bucket": r.size_bucket, "reward": r.reward,
             "success": r.success, "cost_usd": r.cost_usd, "latency_ms": r.latency_ms,
             "source": r.source, "weight": r.weight}
            for r in rows[:limit]]
    return page, cursor


async def monthly_cost(session: AsyncSession, *, api_key_id: str, since: datetime) -> float:
    q = select(func.coalesce(func.sum(RequestLogRow.cost_usd), 0.0)).where(
        RequestLogRow.api_key_id == api_key_id, RequestLogRow.created_at >= since)
    return float((await session.execute(q)).scalar_one())


async def prune(session: AsyncSession, *, older_than: datetime) -> int:
    """Retention: delete request-log, reward and idempotency rows older than
    ``older_than`` (an idempotency row past its window is only a fresh id's obstacle)."""
    total = 0
    for table in (RequestLogRow, RewardRow, IdempotencyRow):
        res = await session.execute(delete(table).where(table.created_at < older_than))
        total += int(getattr(res, "rowcount", 0) or 0)
    await session.commit()
    return total
