"""Durable runs: ``GET /v1/runs/{id}/stream`` (resume a stream run's SSE from any gateway)
and ``POST /v1/runs/{id}/cancel``.

Resume: ``Last-Event-ID: <n>`` (or ``?after=<n>``) replays the events after offset ``n``,
then follows the run live; without either, from the start. 404 for an unknown run, a run
of another API key, a run that is not a stream, or one Temporal no longer retains; 416
when the run is finished and nothing comes after ``n``; 400 when ``n`` is not an integer.
A running run waits for its next event, however far ``n`` is.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import ChatCtx, gateway_of
from api.responses import JSONResponse
from api.security import authorize
from api.stream_relay import DurableStreams
from api.stream_sse import durable_response
from shared.errors import BadRequest, NotFound

router = APIRouter(tags=["runs"])

CANCEL_SCOPES = ("chat", "plan", "runs")


def _streams(request: Request) -> DurableStreams:
    streams = gateway_of(request).service.streams
    if streams is None:
        raise NotFound("durable runs need Temporal (TOKENHUB_TEMPORAL_ENABLED)")
    return streams


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    if raw is None or raw == "":
        return -1
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Last-Event-ID / after must be an integer offset, not {raw!r}"
                         ) from None


@router.get("/v1/runs/{request_id}/stream", summary="Resume a stream run's SSE")
async def resume_stream(request_id: str, request: Request, ctx: ChatCtx) -> Response:
    after = _after(request)
    stream = await _streams(request).resume(request_id, ctx.principal, after + 1)
    return durable_response(stream, request, first=after < 0)


@router.post("/v1/runs/{request_id}/cancel", summary="Cancel a run", status_code=202)
async def cancel_run(request_id: str, request: Request) -> Response:
    principal = await authorize(request, CANCEL_SCOPES)
    status = await _streams(request).cancel(request_id, principal)
    return JSONResponse({"request_id": request_id, "status": status},
                        status_code=202 if status == "cancelling" else 409)
