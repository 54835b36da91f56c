"""Thompson sampling support: the reward formula and the posterior book (SPEC §4)."""

from __future__ import annotations

from shared.routing.types import BetaPosterior


def reward(success: bool, cost_usd: float, latency_ms: float, budget_ms: int) -> float:
    """0 on failure, else 0.4 + 0.3·(1 − min(cost/0.1, 1))
    + 0.3·(1 − min(latency/max(budget_ms, 1000), 1))."""
    if not success:
        return 0.0
    cost_part = 1 - min(cost_usd / 0.1, 1.0)
    lat_part = 1 - min(latency_ms / max(budget_ms, 1000), 1.0)
    return 0.4 + 0.3 * cost_part + 0.3 * lat_part


class PosteriorBook:
    """Beta posteriors per (model, size bucket): refreshed from the rewards table and
    updated incrementally as rewards are observed."""

    def __init__(self) -> None:
        self._posteriors: dict[tuple[str, str], BetaPosterior] = {}

    def refresh(self, posteriors: dict[tuple[str, str], BetaPosterior]) -> None:
        self._posteriors = dict(posteriors)

    def update(self, model_id: str, bucket: str, value: float) -> None:
        prior = self._posteriors.get((model_id, bucket), BetaPosterior())
        self._posteriors[(model_id, bucket)] = BetaPosterior(prior.alpha + value,
                                                             prior.beta + (1 - value))

    def snapshot(self) -> dict[tuple[str, str], BetaPosterior]:
        return self._posteriors
