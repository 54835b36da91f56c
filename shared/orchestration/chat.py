"""Chat orchestration: failover over ranked candidates, output shaping, logging."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.contracts import (
    Attempt,
    Completion,
    NormalizedResponse,
    OutputFormat,
    RequestRecord,
    ResponseMessage,
    RewardRecord,
)
from shared.errors import AllProvidersFailed, TokenHubError
from shared.orchestration.ports import Effects, ModelCall, ModelCallFailed, RecordBatch
from shared.orchestration.retry import RetrySpec
from shared.routing.engine import escalation_order
from shared.routing.output import strip_think, validate_json_output
from shared.routing.thompson import reward
from shared.routing.types import Candidate, ResolvedPolicy

RequestKind = Literal["chat", "plan", "completions", "messages", "stream"]
SizeBucket = Literal["small", "medium", "large"]


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
    attempts: list[Attempt]
    response: NormalizedResponse


def _elapsed_ms(fx: Effects, start: datetime) -> float:
    return (fx.now() - start).total_seconds() * 1000


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
) -> StepResult:
    """Try candidates in rank order, escalating by error class, bounded in count and time.

    Appends every attempt to ``attempts`` (shared across steps of one run) and
    raises AllProvidersFailed listing them when no candidate succeeds.
    """
    log: list[Attempt] = attempts if attempts is not None else []
    start = fx.now()
    remaining = list(route.candidates)
    tried = 0
    while remaining and tried < max_attempts:
        if tried and _elapsed_ms(fx, start) >= policy.max_latency_ms:
            break
        cand = remaining.pop(0)
        tried += 1
        call = ModelCall(request_id=request_id, model=cand.model, messages=messages,
                         parameters=parameters, step=step)
        try:
            res = await fx.call_model(call)
        except ModelCallFailed as failed:
            log.append(failed.attempt)
            remaining = escalation_order(remaining, cand, failed.attempt.outcome)
            continue
        log.append(res.attempt)
        return StepResult(completion=res.completion, candidate=cand, attempts=log,
                          cost_usd=res.cost_usd)
    raise AllProvidersFailed(
        f"all {tried} candidate model(s) failed for step {step!r}",
        details={"attempts": [a.model_dump() for a in log]},
    )


def shape_output(content: str, fmt: OutputFormat | None) -> tuple[str, Any | None]:
    """Apply ``output_format``: strip <think> blocks, validate JSON (422 on failure)."""
    if fmt is None:
        return content, None
    if fmt.strip_think:
        content = strip_think(content)
    if fmt.type == "json":
        return content, validate_json_output(content, fmt.json_schema)
    return content, None


def rewards_for(*, request_id: str, size_bucket: SizeBucket, budget_ms: int,
                attempts: list[Attempt], now: datetime) -> list[RewardRecord]:
    """One reward row per attempted model: 0 on failure, SPEC §4 formula on success."""
    return [
        RewardRecord(
            request_id=request_id, created_at=now, model=a.model, size_bucket=size_bucket,
            success=a.outcome == "ok", cost_usd=a.cost_usd, latency_ms=a.latency_ms,
            reward=reward(a.outcome == "ok", a.cost_usd, a.latency_ms, budget_ms))
        for a in attempts
    ]


def _record(inp: ChatInput, attempts: list[Attempt], now: datetime, latency_ms: float,
            **fields: Any) -> RecordBatch:
    rec = RequestRecord(
        request_id=inp.request_id, created_at=now, kind=inp.kind, mode=inp.policy.mode,
        latency_ms=latency_ms, attempts=attempts, api_key_id=inp.api_key_id,
        request_body=inp.request_body, **fields,
    )
    return RecordBatch(record=rec, rewards=rewards_for(
        request_id=inp.request_id, size_bucket=inp.size_bucket,
        budget_ms=inp.policy.max_latency_ms, attempts=attempts, now=now))


async def run_chat(inp: ChatInput, fx: Effects) -> ChatOutcome:
    """The chat orchestration, identical on the workflow and the local path."""
    start = fx.now()
    attempts: list[Attempt] = []
    try:
        step = await complete_with_failover(
            fx, request_id=inp.request_id, route=inp.route, messages=inp.messages,
            parameters=inp.parameters, policy=inp.policy, max_attempts=inp.max_attempts,
            attempts=attempts)
        content, parsed = shape_output(step.completion.content, inp.output_format)
    except TokenHubError as err:
        err.details.setdefault("attempts", [a.model_dump() for a in attempts])
        failed = attempts[-1] if attempts else None
        await fx.record(_record(
            inp, attempts, fx.now(), _elapsed_ms(fx, start), status="error",
            http_status=err.status_code, error_class=failed.outcome if failed else None,
            model=failed.model if failed else None,
            provider=failed.provider if failed else None))
        raise
    usage = step.completion.usage
    model = step.candidate.model
    await fx.record(_record(
        inp, attempts, fx.now(), _elapsed_ms(fx, start), model=model.id,
        provider=model.provider_id, input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens, cost_usd=step.cost_usd))
    return ChatOutcome(
        request_id=inp.request_id, negotiated_model=model.id, provider=model.provider_id,
        estimated_cost_usd=step.candidate.estimated_cost_usd, routing_reason=inp.route.reason,
        attempts=attempts,
        response=NormalizedResponse(
            message=ResponseMessage(content=content, tool_calls=step.completion.tool_calls),
            finish_reason=step.completion.finish_reason, usage=usage,
            cost_usd=step.cost_usd, parsed=parsed),
    )
