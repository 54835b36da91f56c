"""Routing simulation: what would be picked for a request, without calling anyone."""

from __future__ import annotations

import random
from typing import Any

from shared.contracts import ChatBody
from shared.routing.directives import parse_directives
from shared.routing.engine import route
from shared.routing.estimate import estimate_tokens
from shared.routing.policy import resolve_policy
from shared.routing.types import ResolvedPolicy, RoutingContext


def simulate(body: ChatBody, *, defaults: ResolvedPolicy, ctx: RoutingContext,
             rng: random.Random) -> dict[str, Any]:
    """The ranked candidates with scores and costs, the exclusions and the resolved policy."""
    req = body.request
    messages, overrides = parse_directives(req.messages)
    policy = resolve_policy(defaults, body.policy, overrides)
    tokens = estimate_tokens(messages, req.estimated_input_tokens)
    max_out = (body.output_format.max_tokens if body.output_format else None) \
        or req.parameters.max_tokens
    decision = route(messages=messages, estimated_input_tokens=tokens,
                     model_hint=req.model_hint, policy=policy, ctx=ctx,
                     max_output_tokens=max_out, rng=rng)
    return {
        "policy": decision.policy.model_dump(),
        "estimated_input_tokens": decision.estimated_input_tokens,
        "assumed_output_tokens": decision.assumed_output_tokens,
        "reason": decision.reason,
        "candidates": [{"model": c.model.id, "provider": c.model.provider_id,
                        "score": c.score, "estimated_cost_usd": c.estimated_cost_usd,
                        "reason": c.reason} for c in decision.candidates],
        "excluded": [e.model_dump() for e in decision.excluded],
    }
