"""The Temporal circuit breaker: opens, half-opens to probe, closes (time injected)."""

from __future__ import annotations

from api.circuit import CircuitBreaker, CircuitState


def test_opens_after_repeated_failures_then_probes_and_closes() -> None:
    now = [0.0]
    changes: list[CircuitState] = []
    cb = CircuitBreaker(failures=3, cooldown_s=10, clock=lambda: now[0], on_change=changes.append)
    for _ in range(2):
        assert cb.allow()
        cb.failure()
    assert cb.state is CircuitState.CLOSED
    assert cb.allow()
    cb.failure()
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()  # no connect timeout paid while open
    now[0] = 10.5
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.allow()  # one probe
    assert not cb.allow()  # only one at a time
    cb.success()
    assert cb.state is CircuitState.CLOSED and cb.allow()
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_failed_probe_reopens() -> None:
    now = [0.0]
    cb = CircuitBreaker(failures=1, cooldown_s=5, clock=lambda: now[0])
    cb.failure()
    now[0] = 6
    assert cb.allow()
    cb.failure()
    assert cb.state is CircuitState.OPEN
    now[0] = 7
    assert not cb.allow()
