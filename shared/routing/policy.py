"""Policy resolution: server defaults ← request policy ← in-band directives."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from shared.contracts import Mode, Policy
from shared.routing.types import ResolvedPolicy

# Score weights per mode (cost, latency, failure, weight), SPEC §4.
MODE_WEIGHTS: dict[str, tuple[float, float, float, float]] = {
    "cheap": (0.7, 0.1, 0.1, 0.1),
    "normal": (0.25, 0.25, 0.25, 0.25),
    "high_confidence": (0.05, 0.1, 0.15, 0.7),
    "planning": (0.1, 0.1, 0.2, 0.6),
    "adversarial": (0.1, 0.1, 0.2, 0.6),
    "thompson": (0.25, 0.25, 0.25, 0.25),  # ranking by samples; weights only break ties
}


class DirectiveOverrides(BaseModel):
    """What in-band ``@@tokenhub`` directives set (None = not set)."""

    mode: Mode | None = None
    max_budget_usd: float | None = None
    max_latency_ms: int | None = None
    min_weight: float | None = None
    output_schema: dict[str, Any] | None = None


def resolve_policy(defaults: ResolvedPolicy, request: Policy | None,
                   directives: DirectiveOverrides | None) -> ResolvedPolicy:
    merged = defaults.model_dump()
    for layer in (request, directives):
        if layer is None:
            continue
        for key in ("mode", "max_budget_usd", "max_latency_ms", "min_weight",
                    "min_context_size", "allow_escalation"):
            value = getattr(layer, key, None)
            if value is not None:
                merged[key] = value
    return ResolvedPolicy.model_validate(merged)
