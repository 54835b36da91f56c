"""A circuit breaker for the Temporal path: stop paying connect timeouts while it is down.

Closed: requests try Temporal. After ``failures`` consecutive failures it opens: every
request runs in-process at once. While open, no client request probes Temporal: the
:class:`Prober` (a background task of the dispatcher) tries the connection every
``cooldown_s`` (the breaker is half-open during that probe, requests still run locally)
and closes the breaker when it succeeds. So no request pays for a probe (before, one
request per cool-down took the half-open probe's ~240 ms).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import IntEnum

log = logging.getLogger("tokenhub.circuit")


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; only :meth:`success` closes it."""

    def __init__(self, *, failures: int,
                 on_change: Callable[[CircuitState], None] | None = None) -> None:
        self._threshold = failures
        self._on_change = on_change
        self._failures = 0
        self._state = CircuitState.CLOSED

    @property
    def state(self) -> CircuitState:
        return self._state

    def allow(self) -> bool:
        """May a request try Temporal now? Only while closed."""
        return self._state is CircuitState.CLOSED

    def success(self) -> None:
        self._failures = 0
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def failure(self) -> None:
        """A request (or a probe) found Temporal unreachable."""
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or self._failures >= self._threshold:
            self._set(CircuitState.OPEN)

    def probing(self) -> None:
        """A background probe is under way (requests still run locally)."""
        if self._state is CircuitState.OPEN:
            self._set(CircuitState.HALF_OPEN)

    def _set(self, state: CircuitState) -> None:
        if state is self._state:
            return
        self._state = state
        if self._on_change is not None:
            self._on_change(state)


class Prober:
    """While the breaker is open, probe Temporal every ``cooldown_s`` off the request path.

    ``probe`` returns whether Temporal answered (connect and a health check, bounded in
    time); ``on_probe`` is told each outcome (the probe metric). At most one probe loop
    runs; :meth:`ensure` starts it when the breaker has opened.
    """

    def __init__(self, breaker: CircuitBreaker, probe: Callable[[], Awaitable[bool]], *,
                 cooldown_s: float,
                 on_probe: Callable[[bool], None] | None = None) -> None:
        self._breaker, self._probe, self._cooldown = breaker, probe, cooldown_s
        self._on_probe = on_probe
        self._task: asyncio.Task[None] | None = None
        self.probes = 0

    def ensure(self) -> None:
        if self._breaker.state is CircuitState.CLOSED:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="temporal-probe")

    async def _loop(self) -> None:
        while self._breaker.state is not CircuitState.CLOSED:
            await asyncio.sleep(self._cooldown)
            self._breaker.probing()
            try:
                ok = await self._probe()
            except Exception:  # a probe that crashed found Temporal down
                log.exception("Temporal probe failed unexpectedly")
                ok = False
            self.probes += 1
            if self._on_probe is not None:
                self._on_probe(ok)
            if ok:
                log.info("Temporal reachable again: circuit closed")
                self._breaker.success()
            else:
                self._breaker.failure()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
