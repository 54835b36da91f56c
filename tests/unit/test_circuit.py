"""The Temporal circuit breaker and its background prober (no request ever probes)."""

from __future__ import annotations

import asyncio

from api.circuit import CircuitBreaker, CircuitState, Prober


def test_opens_after_repeated_failures_and_only_a_success_closes_it() -> None:
    changes: list[CircuitState] = []
    cb = CircuitBreaker(failures=3, on_change=changes.append)
    for _ in range(2):
        assert cb.allow()
        cb.failure()
    assert cb.state is CircuitState.CLOSED
    assert cb.allow()
    cb.failure()
    assert cb.state is CircuitState.OPEN
    assert not cb.allow()  # no connect timeout paid while open
    cb.probing()
    assert cb.state is CircuitState.HALF_OPEN
    assert not cb.allow()  # requests never take the probe
    cb.success()
    assert cb.state is CircuitState.CLOSED and cb.allow()
    assert changes == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]


def test_a_failed_probe_reopens() -> None:
    cb = CircuitBreaker(failures=1)
    cb.failure()
    cb.probing()
    cb.failure()
    assert cb.state is CircuitState.OPEN and not cb.allow()


async def test_the_prober_probes_in_the_background_until_temporal_answers() -> None:
    cb = CircuitBreaker(failures=1)
    answers = iter([False, False, True])
    outcomes: list[bool] = []

    async def probe() -> bool:
        assert cb.state is CircuitState.HALF_OPEN
        return next(answers)

    prober = Prober(cb, probe, cooldown_s=0.01, on_probe=outcomes.append)
    prober.ensure()  # closed: nothing to do
    assert prober.probes == 0
    cb.failure()
    prober.ensure()
    prober.ensure()  # one loop at a time
    for _ in range(500):
        if cb.state is CircuitState.CLOSED:
            break
        await asyncio.sleep(0.01)
    assert cb.state is CircuitState.CLOSED
    assert outcomes == [False, False, True] and prober.probes == 3
    await prober.aclose()
