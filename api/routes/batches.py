"""OpenAI-compatible batches: ``POST /v1/batches``, ``GET /v1/batches``, ``GET
/v1/batches/{id}``, ``POST /v1/batches/{id}/cancel`` (api/batches.py runs them). Scope
``runs``; a key sees only its own batches. Creating or cancelling needs Temporal (503)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from api.responses import JSONResponse
from api.routes.files import batches_of
from api.security import authorize
from shared.store.tables import BatchRow

router = APIRouter(tags=["batches"])


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str = Field(min_length=1, max_length=64)
    completion_window: str = "24h"
    metadata: dict[str, str] | None = Field(default=None, max_length=16)


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int
    cancelled: int = 0


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: Any = None
    input_file_id: str
    completion_window: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None
    cost_usd: float = 0.0  # TokenHub: what the items cost so far


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


def _ts(times: dict[str, Any], key: str) -> int | None:
    from datetime import datetime

    value = times.get(key)
    return int(datetime.fromisoformat(value).timestamp()) if value else None


async def batch_object(request: Request, row: BatchRow) -> dict[str, Any]:
    store = batches_of(request).store
    counts = await store.counts(row.id)
    t = row.times or {}
    obj = BatchObject(
        id=row.id, endpoint=row.endpoint, input_file_id=row.input_file_id,
        completion_window=row.completion_window, status=row.status,
        output_file_id=row.output_file_id, error_file_id=row.error_file_id,
        created_at=int(row.created_at.timestamp()),
        **{k: _ts(t, k) for k in ("in_progress_at", "expires_at", "finalizing_at",
                                  "completed_at", "failed_at", "expired_at",
                                  "cancelling_at", "cancelled_at")},
        request_counts=RequestCounts(total=row.total, completed=counts.get("completed", 0),
                                     failed=counts.get("failed", 0),
                                     cancelled=counts.get("cancelled", 0)),
        metadata=row.meta or None, cost_usd=await store.cost(row.id))
    return obj.model_dump()


@router.post("/v1/batches", summary="Create a batch from an uploaded JSONL file",
             response_model=BatchObject)
async def create_batch(body: BatchCreate, request: Request) -> Response:
    principal = await authorize(request, "runs")
    row = await batches_of(request).create(
        principal, input_file_id=body.input_file_id, endpoint=body.endpoint,
        completion_window=body.completion_window, metadata=body.metadata)
    return JSONResponse(await batch_object(request, row))


@router.get("/v1/batches", summary="List batches (a key's own; admin: all)",
            response_model=BatchList)
async def list_batches(request: Request,
                       after: Annotated[str | None, Query(max_length=64)] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
    principal = await authorize(request, "runs")
    key = None if principal is None or "admin" in principal.scopes else principal.key_id
    rows = await batches_of(request).store.batches(key, limit=limit + 1, after=after)
    data = [await batch_object(request, r) for r in rows[:limit]]
    return JSONResponse({"object": "list", "data": data,
                         "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None,
                         "has_more": len(rows) > limit})


@router.get("/v1/batches/{batch_id}", summary="A batch: status and request counts",
            response_model=BatchObject)
async def get_batch(batch_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    row = await batches_of(request).batch(batch_id, principal)
    return JSONResponse(await batch_object(request, row))


@router.post("/v1/batches/{batch_id}/cancel", summary="Cancel a batch",
             response_model=BatchObject)
async def cancel_batch(batch_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    row = await batches_of(request).cancel(batch_id, principal)
    return JSONResponse(await batch_object(request, row))
