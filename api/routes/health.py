"""Probes and metrics: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.responses import Response

from api.deps import StateDep
from api.responses import JSONResponse
from api.schemas import HealthStatus, ReadyStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthStatus)
async def healthz() -> Response:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", response_model=ReadyStatus, responses={
    503: {"model": ReadyStatus, "description": "Not ready (the database is unreachable)"}})
async def readyz(request: Request, state: StateDep) -> Response:
    """Ready = the database answers AND at least one provider is eligible (an enabled model
    on an enabled, healthy provider that has its key). Temporal is reported, not required:
    while it is down the gateway serves through the in-process fallback."""
    gw = request.app.state.tokenhub
    checks: dict[str, str] = {}
    try:
        async with state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        checks["database"] = f"error: {type(exc).__name__}"
    eligible = state.eligible_providers()
    checks["providers"] = (f"{len(eligible)} eligible of {len(state.catalog.providers)} "
                           f"configured" if eligible else
                           f"none eligible of {len(state.catalog.providers)} configured")
    checks["vault"] = await gw.security.vault.state()
    checks["temporal"] = await gw.dispatcher.temporal_status()
    ready = checks["database"] == "ok" and bool(eligible)
    return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response, responses={200: {
    "description": "Prometheus text exposition format",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
async def metrics(state: StateDep) -> Response:
    state.metrics.log_queue.set(state.log_writer.pending)
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
