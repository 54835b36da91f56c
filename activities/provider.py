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
        tries = activity.info().attempt
        try:
            found = self._lookup(call.model.provider_id)
            adapter = await found if inspect.isawaitable(found) else found
            res = await _heartbeating(attempt_once(adapter, call, timeout_s=self._timeout))
        except NotFound as exc:
            err = ProviderError(exc.message, error_class="fatal")
            raise attempt_failure(err, tries=tries, latency_ms=0.0) from None
        except ProviderError as err:
            raise attempt_failure(err, tries=tries, latency_ms=(
                time.perf_counter() - started) * 1000) from None
        res.attempt.tries = tries
        return res
