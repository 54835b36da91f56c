"""Rolling per-model stats and provider cool-downs, in memory (time passed in)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from shared.routing.types import ModelStats, ProviderHealth

_Outcome = tuple[float, bool, float, int]  # (time, ok, latency ms, output tokens)


@dataclass
class _Window:
    """Outcomes plus running sums, so a snapshot costs O(1) per model (one per request)."""

    outcomes: deque[_Outcome] = field(default_factory=lambda: deque(maxlen=200))
    seed: ModelStats | None = None
    oks: int = 0
    ok_latency_sum: float = 0.0
    ok_output_sum: float = 0.0

    def push(self, item: _Outcome) -> None:
        if self.outcomes.maxlen is not None and len(self.outcomes) == self.outcomes.maxlen:
            self._forget(self.outcomes[0])
        self.outcomes.append(item)
        if item[1]:
            self.oks += 1
            self.ok_latency_sum += item[2]
            self.ok_output_sum += item[3]

    def expire(self, cutoff: float) -> None:
        while self.outcomes and self.outcomes[0][0] < cutoff:
            self._forget(self.outcomes.popleft())

    def _forget(self, item: _Outcome) -> None:
        if item[1]:
            self.oks -= 1
            self.ok_latency_sum -= item[2]
            self.ok_output_sum -= item[3]


class StatsWindow:
    """The last ``size`` outcomes per model within ``horizon_s`` seconds."""

    def __init__(self, size: int = 200, horizon_s: float = 3600.0) -> None:
        self._size = size
        self._horizon = horizon_s
        self._models: dict[str, _Window] = {}
        self._now = 0.0

    def seed(self, stats: dict[str, ModelStats]) -> None:
        """Start from stats loaded from the request log (used until live samples exist)."""
        for model_id, s in stats.items():
            self._models.setdefault(model_id, _Window(deque(maxlen=self._size))).seed = s

    def observe(self, model_id: str, ok: bool, latency_ms: float, now: float,
                output_tokens: int = 0) -> None:
        win = self._models.setdefault(model_id, _Window(deque(maxlen=self._size)))
        win.push((now, ok, latency_ms, output_tokens))
        self._now = max(self._now, now)

    def snapshot(self) -> dict[str, ModelStats]:
        out: dict[str, ModelStats] = {}
        cutoff = self._now - self._horizon
        for model_id, win in self._models.items():
            win.expire(cutoff)
            if not win.outcomes:
                win.oks, win.ok_latency_sum, win.ok_output_sum = 0, 0.0, 0.0  # no drift
                if win.seed is not None:
                    out[model_id] = win.seed
                continue
            n = len(win.outcomes)
            out[model_id] = ModelStats(
                latency_ms=win.ok_latency_sum / win.oks if win.oks else None,
                failure_rate=(n - win.oks) / n, samples=n,
                output_tokens=win.ok_output_sum / win.oks if win.oks else None)
        return out


class HealthBook:
    """Provider health from probes and rate-limit cool-downs."""

    def __init__(self) -> None:
        self._cooldowns: dict[str, tuple[float, str]] = {}
        self._health: dict[str, tuple[bool, str | None]] = {}

    def cool_down(self, provider_id: str, until: float, reason: str) -> None:
        current = self._cooldowns.get(provider_id)
        if current is None or current[0] < until:
            self._cooldowns[provider_id] = (until, reason)

    def mark(self, provider_id: str, healthy: bool, reason: str | None = None) -> None:
        self._health[provider_id] = (healthy, reason)

    def snapshot(self, now: float) -> dict[str, ProviderHealth]:
        for pid in [p for p, (until, _) in self._cooldowns.items() if until <= now]:
            del self._cooldowns[pid]
        out: dict[str, ProviderHealth] = {}
        for pid in set(self._cooldowns) | set(self._health):
            healthy, why = self._health.get(pid, (True, None))
            until, cool_reason = self._cooldowns.get(pid, (None, None))
            out[pid] = ProviderHealth(healthy=healthy, cooldown_until=until,
                                      reason=cool_reason or why)
        return out
