"""Turn a client request into a run input: directives, policy, estimate, route.

Runs in the gateway before dispatch (pure, given a routing context), so the
workflow and the local runtime receive the same ranked candidates.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.contracts import ChatBody, Message, Mode, OutputFormat, PlanBody, Policy
from shared.errors import NotFound
from shared.limits import DEFAULT_LIMITS, RequestLimits, check_messages
from shared.orchestration.chat import ChatInput, RequestKind, Route
from shared.orchestration.plan import PlanInput
from shared.orchestration.retry import RetrySpec
from shared.routing.directives import parse_directives
from shared.routing.engine import require_candidates, route
from shared.routing.estimate import estimate_tokens, size_bucket
from shared.routing.output import check_schema
from shared.routing.policy import resolve_policy
from shared.routing.types import ResolvedPolicy, RoutingContext, RoutingDecision


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as OpenAI-shaped dicts for the providers."""
    return [m.model_dump(exclude_none=True) for m in messages]


def decide(
    *,
    messages: list[Message],
    policy: Policy | None,
    defaults: ResolvedPolicy,
    ctx: RoutingContext,
    rng: random.Random,
    model_hint: str | None = None,
    estimated_input_tokens: int | None = None,
    max_output_tokens: int | None = None,
    known_model: bool = True,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> tuple[list[Message], ResolvedPolicy, RoutingDecision, dict[str, Any] | None]:
    """Strip directives, resolve the policy and route; raise 4xx/503 on bad input.
    The request limits are checked first, before any work proportional to the input."""
    check_messages(messages, limits.max_messages)
    if model_hint is not None and not known_model:
        raise NotFound(f"unknown model {model_hint!r}: see GET /v1/models")
    clean, overrides = parse_directives(messages, max_lines=limits.max_directive_lines)
    resolved = resolve_policy(defaults, policy, overrides)
    tokens = estimate_tokens(clean, estimated_input_tokens)
    decision = route(messages=clean, estimated_input_tokens=tokens, model_hint=model_hint,
                     policy=resolved, ctx=ctx, max_output_tokens=max_output_tokens, rng=rng)
    require_candidates(decision, ctx)
    schema = overrides.output_schema if overrides is not None else None
    return clean, resolved, decision, schema


def prepare_chat(
    body: ChatBody,
    *,
    request_id: str,
    kind: RequestKind,
    defaults: ResolvedPolicy,
    ctx: RoutingContext,
    rng: random.Random,
    max_attempts: int,
    retry: RetrySpec | None = None,
    known_model: bool = True,
    api_key_id: str | None = None,
    request_body: str | None = None,
    started_at: datetime | None = None,
    fingerprint: str | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> ChatInput:
    req = body.request
    fmt = body.output_format
    max_out = (fmt.max_tokens if fmt else None) or req.parameters.max_tokens
    clean, policy, decision, schema = decide(
        messages=req.messages, policy=body.policy, defaults=defaults, ctx=ctx, rng=rng,
        model_hint=req.model_hint, estimated_input_tokens=req.estimated_input_tokens,
        max_output_tokens=max_out, known_model=known_model, limits=limits)
    if schema is not None:
        fmt = (fmt or OutputFormat()).model_copy(update={"type": "json", "json_schema": schema})
    if fmt is not None and fmt.type == "json" and fmt.json_schema is not None:
        check_schema(fmt.json_schema)
    params = req.parameters.forwarded()
    if fmt is not None and fmt.max_tokens is not None:
        params["max_tokens"] = fmt.max_tokens
    return ChatInput(
        request_id=request_id, kind=kind, messages=wire_messages(clean), parameters=params,
        route=Route(candidates=decision.candidates, reason=decision.reason), policy=policy,
        output_format=fmt, size_bucket=size_bucket(decision.estimated_input_tokens),
        max_attempts=max_attempts, retry=retry or RetrySpec(), api_key_id=api_key_id,
        request_body=request_body, started_at=started_at, fingerprint=fingerprint,
    )


_PLAN_MODES: dict[str, Mode] = {"adversarial": "adversarial", "planning": "planning",
                                "vote": "normal", "refine": "high_confidence"}


def prepare_plan(
    body: PlanBody,
    *,
    request_id: str,
    defaults: ResolvedPolicy,
    ctx: RoutingContext,
    rng: random.Random,
    max_attempts: int,
    known_model: Callable[[str], bool],
    retry: RetrySpec | None = None,
    api_key_id: str | None = None,
    request_body: str | None = None,
    started_at: datetime | None = None,
    fingerprint: str | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
) -> PlanInput:
    """Route the primary (planner/voters) and review (critic/judge) roles of a plan run."""
    orch = body.orchestration
    base = body.policy or Policy()
    primary_policy = base.model_copy(update={
        "mode": base.mode or _PLAN_MODES[orch.mode],
        "min_weight": orch.primary_min_weight if orch.primary_min_weight is not None
        else base.min_weight})
    review_policy = base.model_copy(update={
        "mode": "high_confidence",
        "min_weight": orch.review_min_weight if orch.review_min_weight is not None
        else base.min_weight})
    for hint in (orch.primary_model_id, orch.review_model_id):
        if hint is not None and not known_model(hint):
            raise NotFound(f"unknown model {hint!r}: see GET /v1/models")
    max_out = body.request.parameters.max_tokens  # the cost estimate of each step
    clean, policy, primary, schema = decide(
        messages=body.request.messages, policy=primary_policy, defaults=defaults, ctx=ctx,
        rng=rng, model_hint=orch.primary_model_id, max_output_tokens=max_out, limits=limits)
    _, _, review, _ = decide(
        messages=clean, policy=review_policy, defaults=defaults, ctx=ctx, rng=rng,
        model_hint=orch.review_model_id, max_output_tokens=max_out, limits=limits)
    output_schema = schema if schema is not None else orch.output_schema
    if output_schema is not None:
        check_schema(output_schema)
    roles = orch.role_parameters
    role_parameters = {} if roles is None else {
        role: params.forwarded() for role, params in
        (("primary", roles.primary), ("reviewer", roles.reviewer), ("judge", roles.judge))
        if params is not None}
    return PlanInput(
        request_id=request_id, mode=orch.mode, iterations=orch.iterations,
        messages=wire_messages(clean),
        primary=Route(candidates=primary.candidates, reason=primary.reason),
        review=Route(candidates=review.candidates, reason=review.reason),
        voters=orch.voters, return_plan_only=orch.return_plan_only,
        output_schema=output_schema, policy=policy,
        parameters=body.request.parameters.forwarded(), role_parameters=role_parameters,
        size_bucket=size_bucket(primary.estimated_input_tokens), max_attempts=max_attempts,
        retry=retry or RetrySpec(), api_key_id=api_key_id, request_body=request_body,
        started_at=started_at, fingerprint=fingerprint)
