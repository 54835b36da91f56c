"""Async runs (``/v1/runs``): submit a chat or plan run and come back for it.

An async run is the same ChatWorkflow / PlanWorkflow a synchronous request runs (workflow
id = run id = request id), started without waiting; its input carries
:class:`~shared.orchestration.progress.AsyncRun` (deadline, progress events). Its status
comes from Temporal (describe, the ``progress`` query, the result), its events from the
``progress`` topic of the run's Workflow Stream. There is no in-process fallback: async
work needs the engine, so with Temporal down every call here is a 503 saying so.

The budget is reserved when the run is submitted; the hold travels in the run's input and
the run settles it on its real cost when it ends (an activity, workflows/progress.py), so
no gateway needs to be there then. The submitting gateway only observes the summary.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.exceptions import CancelledError as TemporalCancelled
from temporalio.exceptions import TerminatedError
from temporalio.service import RPCError, RPCStatusCode

from api.circuit import CircuitBreaker
from api.dispatch import chat_tags, plan_tags
from api.service import Caller, RequestService
from api.temporal import TemporalRunner, TemporalUnavailable
from engine import attributes
from engine.failures import run_error
from engine.names import CHAT_WORKFLOW, PLAN_WORKFLOW, PROGRESS_QUERY, PROGRESS_TOPIC
from shared.contracts import ChatBody, PlanBody
from shared.errors import BadRequest, NotFound, ServiceUnavailable, TokenHubError
from shared.orchestration.chat import ChatOutcome
from shared.orchestration.plan import PlanOutcome
from shared.orchestration.progress import (
    AsyncRun,
    Charge,
    ProgressEvent,
    RunProgress,
    RunStatus,
)
from shared.security.apikeys import Principal

log = logging.getLogger("tokenhub.runs")

MAX_DEADLINE = timedelta(days=7)
QUERY_TIMEOUT = timedelta(seconds=2)
POLL_COOLDOWN = timedelta(milliseconds=100)
NEEDS_ENGINE = ("async runs and batches need the workflow engine (Temporal), which is "
                "unavailable; they are never run in-process")
_CLOSED: dict[WorkflowExecutionStatus, RunStatus] = {
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.TIMED_OUT: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "cancelled",
}
_LIST_STATUS = {  # GET /v1/runs?status= → visibility query
    "queued": "ExecutionStatus = 'Running' AND TokenHubStatus = 'running'",
    "running": "ExecutionStatus = 'Running' AND TokenHubStatus = 'running'",
    "waiting": "ExecutionStatus = 'Running' AND TokenHubStatus = 'waiting'",
    "completed": "ExecutionStatus = 'Completed'",
    "failed": "ExecutionStatus IN ('Failed', 'TimedOut')",
    "cancelled": "ExecutionStatus IN ('Canceled', 'Terminated')",
}


class RunBody(BaseModel):
    """``POST /v1/runs``: exactly one of ``chat`` (a ``/v1/chat`` body) or ``plan`` (a
    ``/v1/plan`` body); an optional ``deadline`` (RFC 3339, within 7 days) until which
    rate limits and outages are waited out; ``metadata`` (≤ 16 string pairs)."""

    model_config = ConfigDict(extra="forbid")

    chat: ChatBody | None = None
    plan: PlanBody | None = None
    deadline: datetime | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)

    @field_validator("deadline")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("deadline must carry a time zone (RFC 3339, e.g. ...Z)")
        return v

    @field_validator("metadata")
    @classmethod
    def _small(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for key, value in (v or {}).items():
            if len(key) > 64 or len(value) > 512:
                raise ValueError("metadata keys are ≤ 64 characters, values ≤ 512")
        return v

    @model_validator(mode="after")
    def _one(self) -> RunBody:
        if (self.chat is None) == (self.plan is None):
            raise ValueError("give exactly one of 'chat' or 'plan'")
        if self.chat is not None and self.chat.request.stream:
            raise ValueError("an async run does not stream: read its progress from "
                             "GET /v1/runs/{id}/events and its result from GET /v1/runs/{id}")
        return self


@dataclass
class RunState:
    """One run as the gateway sees it (rendered by api/routes/runs.py)."""

    id: str
    kind: str
    status: RunStatus
    created_at: datetime | None
    finished_at: datetime | None
    memo: Mapping[str, Any]
    progress: RunProgress | None = None
    outcome: ChatOutcome | PlanOutcome | None = None
    error: TokenHubError | None = None


@dataclass
class RunPage:
    runs: list[RunState]
    next_cursor: str | None


def _kind(desc: WorkflowExecutionDescription | Any) -> str:
    return "plan" if desc.workflow_type == PLAN_WORKFLOW else "chat"


def owner_of(attrs: Any, memo: Mapping[str, Any]) -> str | None:
    owner: str | None = attrs.get(attributes.API_KEY_ID) or memo.get("api_key_id")
    return owner


def may_see(principal: Principal | None, owner: str | None) -> bool:
    return principal is None or owner == principal.key_id or "admin" in principal.scopes


class AsyncRuns:
    def __init__(self, service: RequestService, temporal: TemporalRunner | None,
                 breaker: CircuitBreaker) -> None:
        self.service, self.temporal, self.breaker = service, temporal, breaker
        self._settling: set[asyncio.Task[None]] = set()

    async def client(self) -> Client:
        """The Temporal client, or a 503 naming why async work cannot run now."""
        if self.temporal is None:
            raise ServiceUnavailable("async runs and batches need the workflow engine: "
                                     "Temporal is disabled (TOKENHUB_TEMPORAL_ENABLED=false)")
        if not self.breaker.allow():
            raise ServiceUnavailable(f"{NEEDS_ENGINE}; try again later")
        try:
            return await self.temporal.client()
        except TemporalUnavailable as exc:
            self.breaker.failure()
            raise ServiceUnavailable(f"{NEEDS_ENGINE} ({exc}); try again later") from None

    # -- submit ------------------------------------------------------------------------------
    async def submit(self, body: RunBody, caller: Caller) -> tuple[str, bool]:
        """Start the run: (run id, whether this call started it)."""
        await self.client()  # a 503 before anything is reserved
        assert self.temporal is not None
        now = datetime.now(UTC)
        if body.deadline is not None and not now < body.deadline <= now + MAX_DEADLINE:
            raise BadRequest("deadline must be in the future and at most 7 days away")
        run = AsyncRun(deadline=body.deadline)
        svc = self.service
        workflow: str
        inp: BaseModel
        result_type: type[ChatOutcome] | type[PlanOutcome]
        if body.chat is not None:
            chat = svc.prepare_chat(body.chat, caller, kind="chat")
            chat = chat.model_copy(update={"run": run})
            attrs, memo = chat_tags(chat)
            workflow, inp, result_type = CHAT_WORKFLOW, chat, ChatOutcome
            estimate = chat.route.candidates[0].estimated_cost_usd
        else:
            assert body.plan is not None
            plan = svc.prepare_plan(body.plan, caller)
            plan = plan.model_copy(update={"run": run})
            attrs, memo = plan_tags(plan)
            workflow, inp, result_type = PLAN_WORKFLOW, plan, PlanOutcome
            estimate = plan.primary.candidates[0].estimated_cost_usd * plan.calls
        memo.update(async_run=True, api_key_id=caller.api_key_id,
                    metadata=body.metadata or {},
                    deadline=body.deadline.isoformat() if body.deadline else None)
        timeout = timedelta(hours=24)
        if body.deadline is not None:
            timeout = max(timeout, body.deadline - now + timedelta(hours=1))
        temporal = self.temporal

        async def start(charge: Charge | None) -> asyncio.Future[Any] | None:
            charged = inp.model_copy(update={"run": run.model_copy(update={"charge": charge})})
            try:
                handle, started = await temporal.submit(
                    workflow, charged, request_id=caller.request_id, result_type=result_type,
                    search_attributes=attrs, memo=memo, execution_timeout=timeout)
            except TemporalUnavailable as exc:
                self.breaker.failure()
                raise ServiceUnavailable(f"{NEEDS_ENGINE} ({exc})") from None
            self.breaker.success()
            if not started:
                return None
            return asyncio.ensure_future(temporal.result(handle))

        started = await svc.submit(caller, estimate, start, tasks=self._settling)
        return caller.request_id, started

    async def aclose(self) -> None:
        for task in list(self._settling):
            task.cancel()
        await asyncio.gather(*self._settling, return_exceptions=True)

    # -- read --------------------------------------------------------------------------------
    async def handle(self, run_id: str, principal: Principal | None
                     ) -> tuple[WorkflowHandle[Any, Any], WorkflowExecutionDescription]:
        """The run, if the caller may see it (404 otherwise, as for an unknown id)."""
        client = await self.client()
        handle = client.get_workflow_handle(run_id)
        try:
            desc = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"run {run_id} not found") from None
            if exc.status == RPCStatusCode.UNAVAILABLE:
                raise ServiceUnavailable(NEEDS_ENGINE) from None
            raise
        if desc.workflow_type not in (CHAT_WORKFLOW, PLAN_WORKFLOW):
            raise NotFound(f"run {run_id} not found")
        memo = await desc.memo()
        if not may_see(principal, owner_of(desc.typed_search_attributes, memo)):
            raise NotFound(f"run {run_id} not found")
        return handle, desc

    async def get(self, run_id: str, principal: Principal | None) -> RunState:
        handle, desc = await self.handle(run_id, principal)
        memo = await desc.memo()
        state = RunState(id=run_id, kind=_kind(desc), status="running",
                         created_at=desc.start_time, finished_at=desc.close_time, memo=memo)
        closed = _CLOSED.get(desc.status) if desc.status is not None else None
        if closed is None:
            state.progress = await self._progress(handle)
            p = state.progress
            state.status = ("queued" if p is None or not p.started
                            else "waiting" if p.status == "waiting" else "running")
            return state
        state.status = closed
        result_type = PlanOutcome if state.kind == "plan" else ChatOutcome
        client = await self.client()
        typed = client.get_workflow_handle(run_id, result_type=result_type)
        try:
            state.outcome = await typed.result(follow_runs=False)
        except WorkflowFailureError as failure:
            if isinstance(failure.cause, TemporalCancelled | TerminatedError):
                state.status = "cancelled"
            else:
                state.error = run_error(failure)
        return state

    async def _progress(self, handle: WorkflowHandle[Any, Any]) -> RunProgress | None:
        try:
            p: RunProgress = await handle.query(PROGRESS_QUERY, result_type=RunProgress,
                                                rpc_timeout=QUERY_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - no worker yet, or a run without the query
            log.debug("progress query of %s failed: %s", handle.id, exc)
            return None
        return p

    async def list(self, principal: Principal | None, *, status: str | None, limit: int,
                   cursor: str | None) -> RunPage:
        client = await self.client()
        clauses = [f"WorkflowType IN ('{CHAT_WORKFLOW}', '{PLAN_WORKFLOW}')"]
        if principal is not None and "admin" not in principal.scopes:
            clauses.append(f"{attributes.API_KEY_ID.name} = '{principal.key_id}'")
        if status is not None:
            clauses.append(_LIST_STATUS[status])
        token = None
        if cursor:
            try:
                token = base64.urlsafe_b64decode(cursor.encode())
            except ValueError:
                raise BadRequest("cursor is not one this API gave") from None
        it = client.list_workflows(" AND ".join(clauses), page_size=limit,
                                   next_page_token=token)
        try:
            await it.fetch_next_page()
        except RPCError as exc:
            if exc.status == RPCStatusCode.INVALID_ARGUMENT:
                raise BadRequest(f"cursor is not one this API gave: {exc.message}") from None
            raise
        runs = []
        for ex in it.current_page or []:
            raw = (ex.typed_search_attributes.get(attributes.STATUS) or "running")
            st: RunStatus = _CLOSED.get(ex.status, "running") if ex.status is not None \
                else "running"
            if st == "running" and raw == "waiting":
                st = "waiting"
            runs.append(RunState(id=ex.id, kind=_kind(ex), status=st,
                                 created_at=ex.start_time, finished_at=ex.close_time,
                                 memo=await ex.memo()))
        nxt = it.next_page_token
        return RunPage(runs, base64.urlsafe_b64encode(nxt).decode() if nxt else None)

    # -- events ------------------------------------------------------------------------------
    async def events(self, run_id: str, principal: Principal | None, from_offset: int
                     ) -> AsyncIterator[tuple[int, ProgressEvent]]:
        """The run's progress events from ``from_offset``, live until the run ends."""
        _, desc = await self.handle(run_id, principal)
        memo = await desc.memo()
        if not memo.get("async_run"):
            raise NotFound(f"run {run_id} has no progress events (not an async run)")
        client = await self.client()
        return self._follow(client, run_id, from_offset)

    @staticmethod
    async def _follow(client: Client, run_id: str, from_offset: int
                      ) -> AsyncIterator[tuple[int, ProgressEvent]]:
        sub = WorkflowStreamClient.create(client, run_id)
        with contextlib.suppress(RPCError):  # history gone: the stream just ends
            async for item in sub.subscribe([PROGRESS_TOPIC], from_offset=from_offset,
                                            result_type=ProgressEvent,
                                            poll_cooldown=POLL_COOLDOWN):
                yield item.offset, item.data
