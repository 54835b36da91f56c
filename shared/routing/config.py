"""The routing configuration every process applies: policy defaults and score weights.

Initial values come from the environment (``TOKENHUB_DEFAULT_*``) and SPEC §4's weight
table; ``PUT /admin/v1/routing-config`` stores a new one in the database (``runtime_config``
row ``routing``) in the transaction that bumps the catalog version, so every gateway
process and worker picks it up with the catalog (shared/catalog.py). Validation is strict:
unknown keys, negative weights and a mode whose weights are all zero are refused, the
error naming the field.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import Mode
from shared.routing.policy import MODE_WEIGHTS
from shared.routing.types import ResolvedPolicy

WeightTuple = tuple[float, float, float, float]


class ScoreWeights(BaseModel):
    """One mode's score weights (SPEC §4: cost, latency, failure rate, model weight)."""

    model_config = ConfigDict(extra="forbid")

    cost: float = Field(ge=0)
    latency: float = Field(ge=0)
    failure: float = Field(ge=0)
    weight: float = Field(ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> ScoreWeights:
        if not (self.cost or self.latency or self.failure or self.weight):
            raise ValueError("all four weights are zero: the score would rank nothing")
        return self

    def as_tuple(self) -> WeightTuple:
        return (self.cost, self.latency, self.failure, self.weight)


class RoutingDefaults(BaseModel):
    """Server defaults of the policy (a request's policy and directives override them)."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "normal"
    max_budget_usd: float = Field(default=0.05, ge=0)
    max_latency_ms: int = Field(default=20000, gt=0)
    min_weight: float = Field(default=0.0, ge=0, le=10)


def _default_weights() -> dict[Mode, ScoreWeights]:
    return {mode: ScoreWeights(cost=c, latency=lat, failure=f, weight=w)  # type: ignore[misc]
            for mode, (c, lat, f, w) in MODE_WEIGHTS.items()}


class RoutingConfig(BaseModel):
    """``GET/PUT /admin/v1/routing-config``."""

    model_config = ConfigDict(extra="forbid")

    defaults: RoutingDefaults = Field(default_factory=RoutingDefaults)
    weights: dict[Mode, ScoreWeights] = Field(default_factory=_default_weights)

    @model_validator(mode="after")
    def _every_mode(self) -> RoutingConfig:
        base = _default_weights()
        self.weights = {**base, **self.weights}  # a mode left out keeps SPEC §4's weights
        return self

    def policy(self) -> ResolvedPolicy:
        return ResolvedPolicy.model_validate(self.defaults.model_dump())

    def weight_table(self) -> dict[str, WeightTuple]:
        return {mode: w.as_tuple() for mode, w in self.weights.items()}

    def merged(self, changes: dict[str, Any]) -> dict[str, Any]:
        """``changes`` laid over this config (per key; per mode for ``weights``), to be
        validated as a whole: a PUT may name only what it changes."""
        out = self.model_dump()
        for key, value in changes.items():
            if key in ("defaults", "weights") and isinstance(value, dict):
                inner = dict(out[key])
                for k, v in value.items():
                    if key == "weights" and isinstance(v, dict) and isinstance(inner.get(k), dict):
                        inner[k] = {**inner[k], **v}
                    else:
                        inner[k] = v
                out[key] = inner
            else:
                out[key] = value
        return out
