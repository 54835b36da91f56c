"""The provider-call activity: exactly one attempt; Temporal's RetryPolicy does the rest."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from temporalio import activity

from engine.failures import attempt_failure
from engine.names import CALL_MODEL
from shared.errors import NotFound, ProviderError
from shared.orchestration.calls import attempt_once
from shared.orchestration.ports import ModelCall, ModelCallResult
from shared.providers.base import ProviderAdapter

# provider id → adapter, resolved at call time (sync, or async like LiveCatalog.adapter,
# which may first pick up a catalog change the worker has not polled yet)
AdapterLookup = Callable[[str], ProviderAdapter | Awaitable[ProviderAdapter]]
T = TypeVar("T")


async def _heartbeating(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` while heartbeating, so a call on a dead worker is retried elsewhere
    after the heartbeat timeout instead of the (long) call timeout."""
    timeout = activity.info().heartbeat_timeout
    task = asyncio.ensure_future(coro)
    if not timeout:
        return await task
    every = max(timeout.total_seconds() / 3, 0.1)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        task.cancel()


def earlier_tries_ms(info: activity.Info) -> float:
    """Time this activity spent on its earlier tries (0 on the first).

    An attempt's latency is the time spent on its model summed over its tries (the local
    runtime sums them in ``with_retries``), but each try of an activity knows only itself.
    Temporal stamps when the first try was scheduled and when this one started (for a
    local activity ``current_attempt_scheduled_time`` stays the first schedule, so
    ``started_time`` is the one to use); between the two lie the earlier tries and the
    retry backoffs, which the RetryPolicy fixes exactly (Temporal adds no jitter), so the
    earlier tries took the difference minus the backoffs. Both stamps come from one clock
    (the server's, or the worker's for a local activity): no skew between machines.
    """
    if info.attempt <= 1:
        return 0.0
    span = (info.started_time - info.scheduled_time).total_seconds()
    policy = info.retry_policy
    backoff = 0.0
    if policy is not None:
        interval = policy.initial_interval.total_seconds()
        cap = policy.maximum_interval.total_seconds() if policy.maximum_interval else None
        for retry in range(1, info.attempt):
            delay = interval * policy.backoff_coefficient ** (retry - 1)
            backoff += min(delay, cap) if cap is not None else delay
    return max(0.0, (span - backoff) * 1000)


class ProviderActivities:
    """Holds the worker's provider adapters (one shared HTTP client per provider)."""

    def __init__(self, lookup: AdapterLookup, *, attempt_timeout_s: float) -> None:
        self._lookup = lookup
        self._timeout = attempt_timeout_s

    @activity.defn(name=CALL_MODEL)
    async def call_model(self, call: ModelCall) -> ModelCallResult:
        """One attempt at one model. A classified failure becomes an ApplicationError whose
        type is the error class (engine/failures.py); only ``transient`` is retryable."""
        started = time.perf_counter()
        info = activity.info()
        tries = info.attempt
        earlier = earlier_tries_ms(info)
        try:
            found = self._lookup(call.model.provider_id)
            adapter = await found if inspect.isawaitable(found) else found
            res = await _heartbeating(attempt_once(adapter, call, timeout_s=self._timeout))
        except NotFound as exc:
            err = ProviderError(exc.message, error_class="fatal")
            raise attempt_failure(err, tries=tries, latency_ms=0.0) from None
        except ProviderError as err:
            raise attempt_failure(err, tries=tries, latency_ms=earlier + (
                time.perf_counter() - started) * 1000) from None
        res.attempt.tries = tries
        res.attempt.latency_ms = round(res.attempt.latency_ms + earlier, 3)
        return res
