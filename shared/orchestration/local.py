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

from shared.contracts import Attempt, Executor
from shared.errors import NotFound, ProviderError
from shared.orchestration.calls import (
    AdapterLookup,
    RetriesExhausted,
    attempt_once,
    failed_attempt,
    open_stream_once,
    with_retries,
)
from shared.orchestration.ports import (
    ModelCall,
    ModelCallFailed,
    ModelCallResult,
    OpenedStream,
    RecordBatch,
)
from shared.orchestration.retry import RetrySpec
from shared.providers.base import EmbeddingCall, Embeddings, ProviderAdapter
from shared.routing.types import ModelSpec

Recorder = Callable[[RecordBatch], Awaitable[None]]


class LocalEffects:
    """Effects backed by direct adapter calls and a direct (batched) recorder."""

    def __init__(self, *, adapters: AdapterLookup, recorder: Recorder,
                 retry: RetrySpec, rng: random.Random | None = None) -> None:
        self._adapters = adapters
        self._recorder = recorder
        self._retry = retry
        self._rng = rng or random.Random()

    executor: Executor = "local"

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, seconds: float, reason: str) -> None:
        await asyncio.sleep(seconds)

    async def record(self, batch: RecordBatch) -> float:
        stamped = batch.at_wall_clock(self.now())
        await self._recorder(stamped)
        return stamped.record.latency_ms

    def _adapter(self, call: ModelCall) -> ProviderAdapter:
        try:
            return self._adapters(call.model.provider_id)
        except NotFound as exc:
            err = ProviderError(exc.message, error_class="fatal")
            raise ModelCallFailed(failed_attempt(call, err, tries=1, latency_ms=0)) from None

    async def open_stream(self, call: ModelCall) -> OpenedStream:
        adapter = self._adapter(call)
        timeout = self._retry.attempt_timeout_s
        try:
            opened, tries, _ = await with_retries(
                self._retry, self._rng,
                lambda: open_stream_once(adapter, call, timeout_s=timeout))
        except RetriesExhausted as ex:
            raise ModelCallFailed(
                failed_attempt(call, ex.err, tries=ex.tries, latency_ms=ex.latency_ms)) from None
        opened.tries = tries
        return opened

    async def call_model(self, call: ModelCall) -> ModelCallResult:
        adapter = self._adapter(call)
        timeout = self._retry.attempt_timeout_s
        try:
            res, tries, failed_ms = await with_retries(
                self._retry, self._rng, lambda: attempt_once(adapter, call, timeout_s=timeout))
        except RetriesExhausted as ex:
            raise ModelCallFailed(
                failed_attempt(call, ex.err, tries=ex.tries, latency_ms=ex.latency_ms)) from None
        res.attempt.tries = tries
        res.attempt.latency_ms = round(res.attempt.latency_ms + failed_ms, 3)
        return res

    async def embed(self, model: ModelSpec, call: EmbeddingCall) -> tuple[Embeddings, Attempt]:
        """One embeddings call with the same retries as a chat call (embeddings have no
        workflow: shared/orchestration/embeddings.py)."""
        mc = ModelCall(request_id=call.request_id or "", model=model,
                       messages=[{"role": "user", "content": ""}], step="embeddings")
        adapter = self._adapter(mc)
        timeout = min(call.timeout_s or self._retry.attempt_timeout_s,
                      self._retry.attempt_timeout_s)
        timed = call.model_copy(update={"timeout_s": timeout})

        async def once() -> tuple[Embeddings, float]:
            started = time.perf_counter()
            result = await adapter.embed(timed)
            return result, (time.perf_counter() - started) * 1000

        try:
            (result, ms), tries, failed_ms = await with_retries(self._retry, self._rng, once)
        except RetriesExhausted as ex:
            raise ModelCallFailed(
                failed_attempt(mc, ex.err, tries=ex.tries, latency_ms=ex.latency_ms)) from None
        tokens = result.usage.prompt_tokens
        attempt = Attempt(model=model.id, provider=model.provider_id, outcome="ok", status=200,
                          latency_ms=round(ms + failed_ms, 3), tries=tries,
                          cost_usd=model.cost_usd(tokens, 0),
                          input_tokens=tokens, step="embeddings")
        return result, attempt
