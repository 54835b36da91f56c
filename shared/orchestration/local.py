"""Local effects: the in-process runtime of the orchestration (Temporal down or disabled).

Retries transient failures with the same :class:`RetrySpec` the Temporal
activity RetryPolicy is built from, so both runtimes try a model equally often.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from shared.contracts import Attempt
from shared.errors import NotFound, ProviderError
from shared.orchestration.ports import ModelCall, ModelCallFailed, ModelCallResult, RecordBatch
from shared.providers.base import ProviderAdapter, ProviderCall
from shared.routing.retry import RetrySpec

AdapterLookup = Callable[[str], ProviderAdapter]
Recorder = Callable[[RecordBatch], Awaitable[None]]
T = TypeVar("T")


def provider_call(call: ModelCall, timeout_s: float | None = None) -> ProviderCall:
    return ProviderCall(upstream_model=call.model.upstream_model, messages=call.messages,
                        parameters=call.parameters, request_id=call.request_id,
                        timeout_s=timeout_s)


async def attempt_once(adapter: ProviderAdapter, call: ModelCall, *,
                       timeout_s: float | None = None) -> ModelCallResult:
    """One provider attempt, timed; failures raise ProviderError (classified)."""
    started = time.perf_counter()
    completion = await adapter.complete(provider_call(call, timeout_s))
    latency_ms = (time.perf_counter() - started) * 1000
    usage = completion.usage
    cost = call.model.cost_usd(usage.prompt_tokens, usage.completion_tokens)
    attempt = Attempt(model=call.model.id, provider=call.model.provider_id, outcome="ok",
                      status=200, latency_ms=round(latency_ms, 3), cost_usd=cost,
                      step=call.step)
    return ModelCallResult(completion=completion, attempt=attempt, cost_usd=cost)


def failed_attempt(call: ModelCall, err: ProviderError, *, tries: int,
                   latency_ms: float) -> Attempt:
    return Attempt(model=call.model.id, provider=call.model.provider_id,
                   outcome=err.error_class, status=err.status, latency_ms=round(latency_ms, 3),
                   tries=tries, message=err.message[:500], retry_after=err.retry_after,
                   step=call.step)


class RetriesExhausted(Exception):
    """A provider operation failed for good: the last error, tries made, last latency."""

    def __init__(self, err: ProviderError, tries: int, latency_ms: float) -> None:
        super().__init__(err.message)
        self.err, self.tries, self.latency_ms = err, tries, latency_ms


async def with_retries(spec: RetrySpec, rng: random.Random,
                       op: Callable[[], Awaitable[T]]) -> tuple[T, int]:
    """Run ``op``, retrying transient ProviderErrors per ``spec``; return (result, tries)."""
    tries = 0
    while True:
        tries += 1
        started = time.perf_counter()
        try:
            return await op(), tries
        except ProviderError as err:
            if err.retryable and tries < spec.max_tries_per_model:
                await asyncio.sleep(spec.delay(tries, rng))
                continue
            raise RetriesExhausted(err, tries, (time.perf_counter() - started) * 1000) from None


class LocalEffects:
    """Effects backed by direct adapter calls and a direct (batched) recorder."""

    def __init__(self, *, adapters: AdapterLookup, recorder: Recorder,
                 retry: RetrySpec, rng: random.Random | None = None) -> None:
        self._adapters = adapters
        self._recorder = recorder
        self._retry = retry
        self._rng = rng or random.Random()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def record(self, batch: RecordBatch) -> None:
        await self._recorder(batch)

    async def call_model(self, call: ModelCall) -> ModelCallResult:
        try:
            adapter = self._adapters(call.model.provider_id)
        except NotFound as exc:
            err = ProviderError(exc.message, error_class="fatal")
            raise ModelCallFailed(failed_attempt(call, err, tries=1, latency_ms=0)) from None
        timeout = self._retry.attempt_timeout_s
        try:
            res, tries = await with_retries(
                self._retry, self._rng, lambda: attempt_once(adapter, call, timeout_s=timeout))
        except RetriesExhausted as ex:
            raise ModelCallFailed(
                failed_attempt(call, ex.err, tries=ex.tries, latency_ms=ex.latency_ms)) from None
        res.attempt.tries = tries
        return res
