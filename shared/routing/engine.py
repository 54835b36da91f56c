"""The routing engine (SPEC §4): eligibility, scoring, hints, aliases, Thompson, escalation.

Pure: everything it needs (models, stats, health, posteriors, the time, an RNG)
is passed in, so the gateway and tests make the same decisions.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from shared.contracts import Message
from shared.errors import ContextLengthExceeded, NoEligibleModel
from shared.routing.estimate import size_bucket
from shared.routing.policy import MODE_WEIGHTS
from shared.routing.types import (
    BetaPosterior,
    Candidate,
    Exclusion,
    ModelSpec,
    ResolvedPolicy,
    RoutingContext,
    RoutingDecision,
)

CONTEXT_MARGIN = 1.15
ASSUMED_OUTPUT_TOKENS = 512


def expected_latency_ms(m: ModelSpec, ctx: RoutingContext, out_tokens: int) -> float | None:
    """The rolling mean latency of the model's successful calls, scaled up when this request
    expects more output tokens than those calls produced on average (never scaled down: a
    short answer still pays the fixed part). None without observations."""
    s = ctx.stats.get(m.id)
    if s is None or s.latency_ms is None:
        return None
    if s.output_tokens and out_tokens > s.output_tokens:
        return s.latency_ms * out_tokens / s.output_tokens
    return s.latency_ms


def _exclusion(m: ModelSpec, ctx: RoutingContext, policy: ResolvedPolicy, tokens: int,
               cost: float, out_tokens: int, kind: str) -> str | None:
    if m.kind != kind:
        return f"{m.kind} model ({kind} requests use {kind} models only)"
    if not m.enabled:
        return "disabled"
    if m.weight < policy.min_weight:
        return f"weight {m.weight:g} < min_weight {policy.min_weight:g}"
    need = CONTEXT_MARGIN * tokens
    if m.max_context_tokens < need:
        return f"context {m.max_context_tokens} < 1.15 × {tokens} estimated tokens"
    if m.max_context_tokens < policy.min_context_size:
        return f"context {m.max_context_tokens} < min_context_size {policy.min_context_size}"
    health = ctx.health.get(m.provider_id)
    if health is not None:
        if not health.healthy:
            return f"provider {m.provider_id} unhealthy: {health.reason or 'probe failed'}"
        if health.cooldown_until is not None and health.cooldown_until > ctx.now:
            left = health.cooldown_until - ctx.now
            return f"provider {m.provider_id} cooling down for {left:.1f}s ({health.reason})"
    if cost > policy.max_budget_usd:
        return f"estimated cost ${cost:.6f} > budget ${policy.max_budget_usd:g}"
    latency = expected_latency_ms(m, ctx, out_tokens)
    if latency is not None and latency > policy.max_latency_ms:
        return (f"expected latency {latency:.0f} ms (rolling mean of successful calls, for "
                f"{out_tokens} output tokens) > max_latency_ms {policy.max_latency_ms}")
    return None


def _scores(models: list[ModelSpec], costs: dict[str, float], ctx: RoutingContext,
            mode: str) -> dict[str, float]:
    wc, wl, wf, ww = ctx.mode_weights.get(mode) or MODE_WEIGHTS[mode]
    known = [s.latency_ms for m in models if (s := ctx.stats.get(m.id)) and s.latency_ms]
    neutral = sum(known) / len(known) if known else 0.0  # unknown latency: the mean of known
    lat = {m.id: (s.latency_ms if (s := ctx.stats.get(m.id)) and s.latency_ms else neutral)
           for m in models}
    fail = {m.id: (s.failure_rate if (s := ctx.stats.get(m.id)) else 0.0) for m in models}
    max_c = max(costs.values()) or 1.0
    max_l = max(lat.values()) or 1.0
    max_f = max(fail.values()) or 1.0
    max_w = max(m.weight for m in models) or 1.0
    return {m.id: wc * costs[m.id] / max_c + wl * lat[m.id] / max_l + wf * fail[m.id] / max_f
            - ww * m.weight / max_w for m in models}


def _thompson(models: list[ModelSpec], ctx: RoutingContext, bucket: str,
              rng: random.Random) -> dict[str, float]:
    """Lower is better, like scores: the negated Beta sample."""
    out = {}
    for m in models:
        post = ctx.posteriors.get((m.id, bucket), BetaPosterior())
        out[m.id] = -rng.betavariate(post.alpha, post.beta)
    return out


def resolve_alias(name: str | None, ctx: RoutingContext, rng: random.Random) -> str | None:
    """An alias becomes one of its models, picked by weight (A/B split)."""
    if name is None or name not in ctx.aliases:
        return name
    targets = sorted(ctx.aliases[name].items())
    ids = [t for t, _ in targets]
    return rng.choices(ids, weights=[w for _, w in targets], k=1)[0]


def route(*, messages: Sequence[Message], estimated_input_tokens: int, model_hint: str | None,
          policy: ResolvedPolicy, ctx: RoutingContext, max_output_tokens: int | None,
          rng: random.Random, kind: str = "chat") -> RoutingDecision:
    """Rank the eligible models of ``kind`` (best first) and say why the others were
    excluded. Without ``allow_escalation`` only the top candidate is kept."""
    out_tokens = max_output_tokens or ASSUMED_OUTPUT_TOKENS
    tokens = estimated_input_tokens
    eligible: list[ModelSpec] = []
    costs: dict[str, float] = {}
    excluded: list[Exclusion] = []
    for m in sorted(ctx.models, key=lambda m: m.id):
        cost = m.cost_usd(tokens, out_tokens)
        reason = _exclusion(m, ctx, policy, tokens, cost, out_tokens, kind)
        if reason is None:
            eligible.append(m)
            costs[m.id] = cost
        else:
            excluded.append(Exclusion(model_id=m.id, reason=reason))
    hint = resolve_alias(model_hint, ctx, rng)
    if not eligible:
        return RoutingDecision(candidates=[], excluded=excluded, policy=policy,
                               estimated_input_tokens=tokens, assumed_output_tokens=out_tokens,
                               reason="no eligible model")
    if policy.mode == "thompson":
        scores = _thompson(eligible, ctx, size_bucket(tokens), rng)
        why = "thompson sample"
    else:
        scores = _scores(eligible, costs, ctx, policy.mode)
        why = f"{policy.mode} score"
    ranked = sorted(eligible, key=lambda m: (scores[m.id], m.id))
    if hint is not None and any(m.id == hint for m in ranked):
        ranked.sort(key=lambda m: m.id != hint)  # stable: hint first, rest keep their order
    candidates = [
        Candidate(model=m, score=round(scores[m.id], 6), estimated_cost_usd=costs[m.id],
                  reason="model_hint" if m.id == hint else why)
        for m in ranked
    ]
    top = candidates[0]
    reason = (f"{top.model.id}: {top.reason} (mode {policy.mode}, {len(candidates)} eligible, "
              f"{len(excluded)} excluded)")
    if not policy.allow_escalation:
        candidates = candidates[:1]
        reason += "; allow_escalation=false: no failover to another model"
    return RoutingDecision(candidates=candidates, excluded=excluded, policy=policy,
                           estimated_input_tokens=tokens, assumed_output_tokens=out_tokens,
                           reason=reason)


def require_candidates(decision: RoutingDecision, ctx: RoutingContext | None = None,
                       kind: str = "chat") -> None:
    """Raise the 503 that says why each model was excluded, when none is eligible — or a
    400 when the prompt is too long for every enabled model (no retry can help)."""
    if decision.candidates:
        return
    windows = [m.max_context_tokens for m in (ctx.models if ctx else [])
               if m.enabled and m.kind == kind]
    need = CONTEXT_MARGIN * decision.estimated_input_tokens
    if windows and max(windows) < need:
        raise ContextLengthExceeded(
            f"the prompt (~{decision.estimated_input_tokens} tokens, estimated) is too long "
            f"for every model: the largest context window is {max(windows)} tokens",
            details={"excluded": [e.model_dump() for e in decision.excluded]})
    why = "; ".join(f"{e.model_id}: {e.reason}" for e in decision.excluded) or "no models"
    raise NoEligibleModel(f"no eligible model: {why}",
                          details={"excluded": [e.model_dump() for e in decision.excluded]})


def escalation_order(remaining: list[Candidate], failed: Candidate,
                     outcome: str) -> list[Candidate]:
    """The candidates still worth trying after ``failed`` failed with ``outcome``.

    context_overflow → only models with a strictly larger context window;
    rate_limited → skip the rest of that provider; otherwise the next in rank.
    """
    if outcome == "context_overflow":
        return [c for c in remaining
                if c.model.max_context_tokens > failed.model.max_context_tokens]
    if outcome == "rate_limited":
        return [c for c in remaining if c.model.provider_id != failed.model.provider_id]
    return list(remaining)
