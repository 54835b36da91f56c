"""A circuit breaker for the Temporal path: stop paying connect timeouts while it is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import IntEnum


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``cooldown_s`` lets one probe
    through (half-open); a success closes it, a failure re-opens it."""

    def __init__(self, *, failures: int, cooldown_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[CircuitState], None] | None = None) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state = CircuitState.CLOSED

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self._cooldown:
            self._set(CircuitState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """May a request try Temporal now? In half-open, only one probe at a time."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def failure(self) -> None:
        self._probing = False
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock()
            self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)
