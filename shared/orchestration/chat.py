"""Chat orchestration: failover over ranked candidates, output shaping, the run's record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field

from shared.contracts import (
    Attempt,
    Completion,
    NormalizedResponse,
    OutputFormat,
    ResponseMessage,
)
from shared.errors import AllProvidersFailed, TokenHubError
from shared.orchestration.ports import Effects, ModelCall, ModelCallFailed, ModelCallResult
from shared.orchestration.progress import AsyncRun, wait_delay, wait_reason
from shared.orchestration.records import (
    RequestKind,
    RunSummary,
    SizeBucket,
    summarize,
    write_record,
)
from shared.orchestration.retry import RetrySpec
from shared.orchestration.streamlog import StreamOptions
from shared.routing.engine import escalation_order
from shared.routing.output import strip_think, validate_json_output
from shared.routing.types import Candidate, ResolvedPolicy

T = TypeVar("T")

__all__ = ["ChatInput", "ChatOutcome", "RequestKind", "Route", "SizeBucket", "run_chat"]


class Route(BaseModel):
    """Ranked candidates for one step, as decided by the routing engine."""

    candidates: list[Candidate] = Field(min_length=1)
    reason: str = ""


class ChatInput(BaseModel):
    """Everything a chat run needs; built by the gateway, run by either runtime."""

    request_id: str
    kind: RequestKind = "chat"
    messages: list[dict[str, Any]] = Field(min_length=1)  # directives already stripped
    parameters: dict[str, Any] = Field(default_factory=dict)
    route: Route
    policy: ResolvedPolicy
    output_format: OutputFormat | None = None
    size_bucket: SizeBucket = "small"
    max_attempts: int = 8
    retry: RetrySpec = Field(default_factory=RetrySpec)
    api_key_id: str | None = None
    request_body: str | None = None  # only when TOKENHUB_LOG_BODIES is on
    started_at: datetime | None = None  # the gateway's wall clock at arrival (run latency)
    fingerprint: str | None = None  # of a client-supplied request id's body (idempotency)
    # set when the run streams on the workflow path (shared/orchestration/durable_stream.py)
    stream: StreamOptions | None = None
    run: AsyncRun | None = None  # an async run (POST /v1/runs): deadline, progress events

    @property
    def deadline(self) -> datetime | None:
        return self.run.deadline if self.run is not None else None

    def summary(self, fx: Effects, attempts: list[Attempt], start: datetime,
                error: TokenHubError | None = None) -> RunSummary:
        return summarize(
            request_id=self.request_id, kind=self.kind, mode=self.policy.mode,
            executor=fx.executor, attempts=attempts, latency_ms=elapsed_ms(fx, start),
            api_key_id=self.api_key_id, size_bucket=self.size_bucket,
            budget_ms=self.policy.max_latency_ms, error=error)


class StepResult(BaseModel):
    """One routed step that succeeded (possibly after failovers)."""

    completion: Completion
    candidate: Candidate
    attempts: list[Attempt]
    cost_usd: float


class ChatOutcome(BaseModel):
    request_id: str
    negotiated_model: str
    provider: str
    estimated_cost_usd: float
    routing_reason: str
    response: NormalizedResponse
    summary: RunSummary
    cache: Literal["hit", "miss"] | None = None  # set by the gateway when caching applied

    @property
    def attempts(self) -> list[Attempt]:
        return self.summary.attempts


def elapsed_ms(fx: Effects, start: datetime) -> float:
    return (fx.now() - start).total_seconds() * 1000


MIN_CALL_TIMEOUT_S = 0.01


def budget_left_s(fx: Effects, start: datetime, policy: ResolvedPolicy) -> float:
    """Seconds left in the policy's latency budget since ``start``: the bound of the next
    provider call's timeout (at least MIN_CALL_TIMEOUT_S)."""
    return max((policy.max_latency_ms - elapsed_ms(fx, start)) / 1000, MIN_CALL_TIMEOUT_S)


async def failover(fx: Effects, *, route: Route, policy: ResolvedPolicy, max_attempts: int,
                   attempts: list[Attempt], what: str,
                   attempt: Callable[[Candidate], Awaitable[T]]) -> tuple[Candidate, T]:
    """Try candidates in rank order until ``attempt`` succeeds, escalating by error class
    (``ModelCallFailed``), bounded in count and in the policy's latency budget.

    Appends every failed attempt to ``attempts`` and raises AllProvidersFailed listing
    them when no candidate succeeds. Chat steps and streams both fail over through here.
    """
    start = fx.now()
    remaining = list(route.candidates)
    tried = 0
    while remaining and tried < max_attempts:
        if tried and elapsed_ms(fx, start) >= policy.max_latency_ms:
            break
        cand = remaining.pop(0)
        tried += 1
        try:
            return cand, await attempt(cand)
        except ModelCallFailed as failed:
            attempts.append(failed.attempt)
            remaining = escalation_order(remaining, cand, failed.attempt.outcome)
    raise AllProvidersFailed(f"all {tried} candidate model(s) failed {what}",
                             details={"attempts": [a.model_dump() for a in attempts]})


async def complete_with_failover(
    fx: Effects,
    *,
    request_id: str,
    route: Route,
    messages: list[dict[str, Any]],
    parameters: dict[str, Any],
    policy: ResolvedPolicy,
    max_attempts: int,
    step: str = "chat",
    attempts: list[Attempt] | None = None,
    deadline: datetime | None = None,
) -> StepResult:
    """One routed step: the first candidate that answers (``attempts`` is shared across
    the steps of one run). With a ``deadline`` (async runs), a round in which every
    candidate was rate-limited or down is followed by a wait and another round."""
    log: list[Attempt] = attempts if attempts is not None else []
    start = fx.now()

    async def call(cand: Candidate) -> ModelCallResult:
        return await fx.call_model(ModelCall(request_id=request_id, model=cand.model,
                                             messages=messages, parameters=parameters,
                                             step=step,
                                             timeout_s=budget_left_s(fx, start, policy)))

    rounds = 0
    while True:
        before = len(log)
        try:
            cand, res = await failover(fx, route=route, policy=policy,
                                       max_attempts=max_attempts, attempts=log,
                                       what=f"for step {step!r}", attempt=call)
            break
        except AllProvidersFailed:
            # an async run with a deadline waits out rate limits and outages (progress.py)
            failed = log[before:]
            delay = wait_delay(failed, now=fx.now(), deadline=deadline, rounds=rounds)
            if delay is None:
                raise
            rounds += 1
            await fx.wait(delay, wait_reason(failed))
            start = fx.now()  # a fresh latency budget for the next round
    log.append(res.attempt)
    return StepResult(completion=res.completion, candidate=cand, attempts=log,
                      cost_usd=res.cost_usd)


def shape_output(content: str, fmt: OutputFormat | None) -> tuple[str, Any | None]:
    """Apply ``output_format``: strip <think> blocks, validate JSON (422 on failure)."""
    if fmt is None:
        return content, None
    if fmt.strip_think:
        content = strip_think(content)
    if fmt.type == "json":
        return content, validate_json_output(content, fmt.json_schema)
    return content, None


async def fail_run(fx: Effects, err: TokenHubError, summary: RunSummary,
                   request_body: str | None, started_at: datetime | None) -> None:
    """Record a failed run and attach what it did to the error (attempts for the client,
    the summary for the gateway's metrics)."""
    err.details.setdefault("attempts", [a.model_dump() for a in summary.attempts])
    err.summary = await write_record(fx, summary, started_at=started_at,
                                     request_body=request_body)


async def run_chat(inp: ChatInput, fx: Effects) -> ChatOutcome:
    """The chat orchestration, identical on the workflow and the local path."""
    start = fx.now()
    attempts: list[Attempt] = []
    try:
        step = await complete_with_failover(
            fx, request_id=inp.request_id, route=inp.route, messages=inp.messages,
            parameters=inp.parameters, policy=inp.policy, max_attempts=inp.max_attempts,
            attempts=attempts, deadline=inp.deadline)
        content, parsed = shape_output(step.completion.content, inp.output_format)
    except TokenHubError as err:
        await fail_run(fx, err, inp.summary(fx, attempts, start, err), inp.request_body,
                       inp.started_at)
        raise
    summary = await write_record(fx, inp.summary(fx, attempts, start),
                                 started_at=inp.started_at, request_body=inp.request_body)
    model = step.candidate.model
    return ChatOutcome(
        request_id=inp.request_id, negotiated_model=model.id, provider=model.provider_id,
        estimated_cost_usd=step.candidate.estimated_cost_usd, routing_reason=inp.route.reason,
        summary=summary,
        response=NormalizedResponse(
            message=ResponseMessage(content=content, tool_calls=step.completion.tool_calls),
            finish_reason=step.completion.finish_reason, usage=step.completion.usage,
            cost_usd=step.cost_usd, parsed=parsed, logprobs=step.completion.logprobs),
    )
