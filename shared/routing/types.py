"""Value types of the routing engine (pure: no I/O, no clock, no global RNG)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts import Mode


class ModelSpec(BaseModel):
    """What the engine knows about one model (SPEC §4 model record)."""

    id: str
    provider_id: str
    upstream_model: str
    weight: float = Field(ge=0, le=10)
    max_context_tokens: int
    input_per_1k: float
    output_per_1k: float
    enabled: bool = True
    kind: Literal["chat", "embedding"] = "chat"

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens / 1000 * self.input_per_1k + output_tokens / 1000 * self.output_per_1k


class ResolvedPolicy(BaseModel):
    """A policy with every field decided (defaults ← request ← directives)."""

    mode: Mode = "normal"
    max_budget_usd: float = 0.05
    max_latency_ms: int = 20000
    min_weight: float = 0.0
    min_context_size: int = 0  # models with a smaller context window are ineligible
    allow_escalation: bool = True  # False: the top candidate only, never another model


@dataclass(frozen=True)
class ModelStats:
    """Rolling observed stats of one model (from the stats window, passed in)."""

    latency_ms: float | None = None  # rolling mean of successful calls
    failure_rate: float = 0.0  # 0..1
    samples: int = 0
    output_tokens: float | None = None  # mean output tokens of those calls (latency scaling)


@dataclass(frozen=True)
class ProviderHealth:
    """Whether a provider may be used; ``cooldown_until`` is a monotonic/epoch second."""

    healthy: bool = True
    cooldown_until: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class BetaPosterior:
    alpha: float = 1.0
    beta: float = 1.0


@dataclass(frozen=True)
class RoutingContext:
    """Everything the engine needs beyond the request, passed in (no I/O inside)."""

    models: list[ModelSpec]
    now: float
    stats: dict[str, ModelStats] = field(default_factory=dict)
    health: dict[str, ProviderHealth] = field(default_factory=dict)
    # (model id, size bucket) → posterior; buckets are "small" (<1k), "medium" (≤10k), "large"
    posteriors: dict[tuple[str, str], BetaPosterior] = field(default_factory=dict)
    aliases: dict[str, dict[str, float]] = field(default_factory=dict)
    # mode → (cost, latency, failure, weight) score weights; modes not here use SPEC §4's
    mode_weights: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


class Candidate(BaseModel):
    """An eligible model with its score (lower wins) and estimated cost."""

    model: ModelSpec
    score: float
    estimated_cost_usd: float
    reason: str


class Exclusion(BaseModel):
    model_id: str
    reason: str


class RoutingDecision(BaseModel):
    """Ranked candidates (best first), exclusions, and the resolved inputs."""

    candidates: list[Candidate]
    excluded: list[Exclusion]
    policy: ResolvedPolicy
    estimated_input_tokens: int
    assumed_output_tokens: int
    reason: str
