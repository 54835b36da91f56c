"""Runs: async runs (``POST /v1/runs``, ``GET /v1/runs``, ``GET /v1/runs/{id}``, its
progress events) and what every durable run offers (resume a stream, cancel).

Async runs (api/runs.py) need Temporal: 503 when it is down, never run in-process. A key
sees only its own runs (404 for another key's); an ``admin`` key sees all.

Stream resume: ``Last-Event-ID: <n>`` (or ``?after=<n>``) replays the events after offset
``n``, then follows the run live; without either, from the start. 404 for an unknown run,
a run of another API key, a run that is not a stream, or one Temporal no longer retains;
416 when the run is finished and nothing comes after ``n``; 400 when ``n`` is not an
integer. A running run waits for its next event, however far ``n`` is. Progress events
(``GET /v1/runs/{id}/events``) resume the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from api.deps import ChatCtx, context, gateway_of
from api.responses import JSONResponse
from api.routes.chat import chat_answer
from api.routes.plan import plan_answer
from api.runs import AsyncRuns, RunBody, RunState
from api.security import authorize, stored_body
from api.stream_relay import DurableStreams
from api.stream_sse import durable_response
from shared.errors import BadRequest, Conflict, NotFound
from shared.orchestration.chat import ChatOutcome
from shared.orchestration.progress import RunStatus

router = APIRouter(tags=["runs"])

CANCEL_SCOPES = ("chat", "plan", "runs")


class RunLinks(BaseModel):
    self: str
    events: str
    cancel: str


class RunAccepted(BaseModel):
    id: str
    object: Literal["run"] = "run"
    status: RunStatus
    links: RunLinks


class RunProgressView(BaseModel):
    steps_done: int = 0
    steps_total: int = 1
    current_step: str | None = None
    current_model: str | None = None
    retries: int = 0
    waiting_until: datetime | None = None


class RunError(BaseModel):
    type: str
    message: str
    details: dict[str, Any] | None = None


class RunView(BaseModel):
    id: str
    object: Literal["run"] = "run"
    kind: Literal["chat", "plan"]
    status: RunStatus
    created_at: datetime | None = None
    finished_at: datetime | None = None
    deadline: str | None = None
    metadata: dict[str, str] = {}
    progress: RunProgressView | None = None
    cost_usd: float | None = None
    result: dict[str, Any] | None = None
    error: RunError | None = None
    links: RunLinks


class RunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RunView]
    next_cursor: str | None = None
    has_more: bool = False


def _links(run_id: str) -> RunLinks:
    return RunLinks(self=f"/v1/runs/{run_id}", events=f"/v1/runs/{run_id}/events",
                    cancel=f"/v1/runs/{run_id}/cancel")


def _runs(request: Request) -> AsyncRuns:
    runs: AsyncRuns = gateway_of(request).runs
    return runs


def _view(state: RunState) -> RunView:
    memo = state.memo
    view = RunView(id=state.id, kind="plan" if state.kind == "plan" else "chat",
                   status=state.status, created_at=state.created_at,
                   finished_at=state.finished_at, deadline=memo.get("deadline"),
                   metadata=memo.get("metadata") or {}, links=_links(state.id))
    p = state.progress
    if p is not None:
        view.progress = RunProgressView(steps_done=p.steps_done, steps_total=p.steps_total,
                                        current_step=p.current_step,
                                        current_model=p.current_model, retries=p.retries,
                                        waiting_until=p.waiting_until)
        view.cost_usd = p.cost_usd
    out = state.outcome
    if out is not None:
        run = out.summary
        view.result = chat_answer(out) if isinstance(out, ChatOutcome) else plan_answer(out)
        view.cost_usd = run.cost_usd
        steps = len([a for a in run.attempts if a.outcome == "ok"])
        view.progress = RunProgressView(steps_done=steps, steps_total=steps,
                                        retries=len(run.attempts) - steps)
    err = state.error
    if err is not None:
        view.error = RunError(type=err.error_type, message=err.message,
                              details=err.details or None)
        if err.summary is not None:
            view.cost_usd = getattr(err.summary, "cost_usd", None)
    if state.status == "cancelled" and err is None:
        view.error = RunError(type="cancelled", message="the run was cancelled")
    return view


def _after(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    if raw is None or raw == "":
        return -1
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"Last-Event-ID / after must be an integer offset, not {raw!r}"
                         ) from None


@router.post("/v1/runs", summary="Submit an async run (a chat or plan body)",
             status_code=202, response_model=RunAccepted)
async def submit_run(body: RunBody, request: Request) -> Response:
    ctx = await context(request, "runs")
    caller = ctx.caller(stored_body(request, body), body=body)
    run_id, _ = await _runs(request).submit(body, caller)
    accepted = RunAccepted(id=run_id, status="queued", links=_links(run_id))
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/v1/runs/{run_id}"})


@router.get("/v1/runs", summary="List runs (a key's own; admin: all)", response_model=RunList)
async def list_runs(request: Request,
                    status: Annotated[RunStatus | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20,
                    cursor: Annotated[str | None, Query(max_length=4096)] = None) -> Response:
    principal = await authorize(request, "runs")
    page = await _runs(request).list(principal, status=status, limit=limit, cursor=cursor)
    out = RunList(data=[_view(r) for r in page.runs], next_cursor=page.next_cursor,
                  has_more=page.next_cursor is not None)
    return JSONResponse(out.model_dump(mode="json"))


@router.get("/v1/runs/{run_id}", summary="A run's status, progress and result",
            response_model=RunView)
async def get_run(run_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    state = await _runs(request).get(run_id, principal)
    return JSONResponse(_view(state).model_dump(mode="json"))


@router.get("/v1/runs/{run_id}/events", summary="A run's progress events (SSE)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}})
async def run_events(run_id: str, request: Request) -> Response:
    principal = await authorize(request, "runs")
    after = _after(request)
    events = await _runs(request).events(run_id, principal, after + 1)

    async def body() -> AsyncIterator[bytes]:
        async for offset, ev in events:
            data = orjson.dumps(ev.model_dump(mode="json", exclude_none=True))
            yield f"id: {offset}\nevent: {ev.type}\ndata: ".encode() + data + b"\n\n"

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _streams(request: Request) -> DurableStreams:
    streams = gateway_of(request).service.streams
    if streams is None:
        raise NotFound("durable runs need Temporal (TOKENHUB_TEMPORAL_ENABLED)")
    return streams


@router.get("/v1/runs/{request_id}/stream", summary="Resume a stream run's SSE")
async def resume_stream(request_id: str, request: Request, ctx: ChatCtx) -> Response:
    after = _after(request)
    stream = await _streams(request).resume(request_id, ctx.principal, after + 1)
    return durable_response(stream, request, first=after < 0)


@router.post("/v1/runs/{request_id}/cancel", summary="Cancel a run", status_code=202)
async def cancel_run(request_id: str, request: Request) -> Response:
    """Cancel any run (async, stream or synchronous): 202 while it is being cancelled,
    409 if it already ended."""
    principal = await authorize(request, CANCEL_SCOPES)
    runs = _runs(request)
    handle, desc = await runs.handle(request_id, principal)
    if desc.close_time is not None:
        err = Conflict(f"run {request_id} already ended")
        return JSONResponse({"id": request_id, "request_id": request_id, "status": "closed",
                             "error": {"type": err.error_type, "message": err.message,
                                       "request_id": request_id}}, status_code=409)
    await handle.cancel()
    return JSONResponse({"id": request_id, "request_id": request_id, "status": "cancelling"},
                        status_code=202)
