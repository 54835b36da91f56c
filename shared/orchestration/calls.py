"""One provider attempt, and the retry loop over attempts: shared by both runtimes.

The Temporal activity makes exactly one attempt (:func:`attempt_once`; Temporal's
RetryPolicy retries it); the local runtime loops with :func:`with_retries` over the same
:class:`~shared.orchestration.retry.RetrySpec`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from shared.contracts import Attempt, StreamChunk
from shared.errors import ProviderError
from shared.orchestration.ports import ModelCall, ModelCallResult, OpenedStream
from shared.orchestration.retry import RetrySpec
from shared.providers.base import ProviderAdapter, ProviderCall
from shared.security.redact import redact

AdapterLookup = Callable[[str], ProviderAdapter]
T = TypeVar("T")


def call_timeout(call: ModelCall, configured_s: float | None) -> float | None:
    """The provider call's timeout: the configured one, bounded by the time left in the
    request's latency budget (``call.timeout_s``)."""
    if call.timeout_s is None:
        return configured_s
    if configured_s is None:
        return call.timeout_s
    return min(call.timeout_s, configured_s)


def provider_call(call: ModelCall, timeout_s: float | None = None) -> ProviderCall:
    return ProviderCall(upstream_model=call.model.upstream_model, messages=call.messages,
                        parameters=call.parameters, request_id=call.request_id,
                        timeout_s=call_timeout(call, timeout_s))


async def open_stream_once(adapter: ProviderAdapter, call: ModelCall, *,
                           timeout_s: float | None = None) -> OpenedStream:
    """Open a provider stream and read its first chunk (the end of failover for it)."""
    it = aiter(adapter.stream(provider_call(call, timeout_s)))
    try:
        first = await anext(it)
    except StopAsyncIteration:
        first = StreamChunk()
    except BaseException:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return OpenedStream(first=first, rest=it)


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
                      input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                      step=call.step)
    return ModelCallResult(completion=completion, attempt=attempt, cost_usd=cost)


def failed_attempt(call: ModelCall, err: ProviderError, *, tries: int,
                   latency_ms: float) -> Attempt:
    return Attempt(model=call.model.id, provider=call.model.provider_id,
                   outcome=err.error_class, status=err.status, latency_ms=round(latency_ms, 3),
                   tries=tries, message=redact(err.message)[:500],  # again: defensive
                   retry_after=err.retry_after,
                   step=call.step)


class RetriesExhausted(Exception):
    """A provider operation failed for good: the last error, the tries made and the time
    spent on them (summed over the tries, backoff sleeps excluded)."""

    def __init__(self, err: ProviderError, tries: int, latency_ms: float) -> None:
        super().__init__(err.message)
        self.err, self.tries, self.latency_ms = err, tries, latency_ms


async def with_retries(spec: RetrySpec, rng: random.Random,
                       op: Callable[[], Awaitable[T]]) -> tuple[T, int, float]:
    """Run ``op``, retrying transient ProviderErrors per ``spec``.

    Returns (result, tries, ms spent in the failed tries before it): an attempt's latency
    is the time spent on its model summed over every try (the Temporal activity reports
    the same from its activity info), not just the last try's.
    """
    tries = 0
    failed_ms = 0.0
    while True:
        tries += 1
        started = time.perf_counter()
        try:
            return await op(), tries, failed_ms
        except ProviderError as err:
            failed_ms += (time.perf_counter() - started) * 1000
            if err.retryable and tries < spec.max_tries_per_model:
                await asyncio.sleep(spec.delay(tries, rng))
                continue
            raise RetriesExhausted(err, tries, failed_ms) from None
