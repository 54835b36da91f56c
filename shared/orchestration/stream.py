"""Streamed chat: failover before the first chunk, then the answer relayed as it comes.

Before the first chunk the stream fails over like a chat run (rank order, escalation by
error class, bounded in count and time). Once a model has produced its first chunk the
answer is committed to it: a failure after that ends the stream (the transport says so
in-band). However the stream ends — completed, cut by the provider, or abandoned by the
client — the run's record is written once, from the same run summary as any other run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from shared.contracts import Attempt, Executor, StreamChunk, Usage
from shared.errors import AllProvidersFailed, ProviderError
from shared.orchestration.calls import failed_attempt
from shared.orchestration.chat import (
    ChatInput,
    budget_left_s,
    elapsed_ms,
    fail_run,
    failover,
)
from shared.orchestration.ports import ModelCall, OpenedStream, StreamingEffects
from shared.orchestration.records import RunSummary, record_batch
from shared.routing.types import Candidate, ModelSpec

OnFinish = Callable[[RunSummary], Awaitable[None]]


async def open_chat_stream(inp: ChatInput, fx: StreamingEffects) -> ChatStream:
    """The first candidate that yields a first chunk; AllProvidersFailed (recorded) if none."""
    start = fx.now()
    attempts: list[Attempt] = []

    async def open_one(cand: Candidate) -> tuple[OpenedStream, datetime]:
        opened_at = fx.now()
        return await fx.open_stream(ModelCall(
            request_id=inp.request_id, model=cand.model, messages=inp.messages,
            parameters=inp.parameters, step="stream",
            timeout_s=budget_left_s(fx, start, inp.policy))), opened_at

    try:
        cand, (opened, opened_at) = await failover(
            fx, route=inp.route, policy=inp.policy, max_attempts=inp.max_attempts,
            attempts=attempts, what="before streaming", attempt=open_one)
    except AllProvidersFailed as err:
        await fail_run(fx, err, inp.summary(fx, attempts, start, err), inp.request_body)
        raise
    return ChatStream(inp, fx, cand, opened, attempts=attempts, start=start,
                      opened_at=opened_at)


class ChatStream:
    """A committed stream: iterate :meth:`chunks`; the record is written when it ends."""

    def __init__(self, inp: ChatInput, fx: StreamingEffects, cand: Candidate,
                 opened: OpenedStream, *, attempts: list[Attempt], start: datetime,
                 opened_at: datetime) -> None:
        self.inp, self._fx, self.candidate, self._opened = inp, fx, cand, opened
        self._attempts, self._start, self._opened_at = attempts, start, opened_at
        self.usage = Usage()
        self.error: ProviderError | None = None
        self.summary: RunSummary | None = None
        self.on_finish: list[OnFinish] = []

    @property
    def model(self) -> ModelSpec:
        return self.candidate.model

    @property
    def executor(self) -> Executor:
        return self._fx.executor

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        """Every chunk, the first included. Stops at the end of the answer or at a
        mid-stream failure (then :attr:`error` says why)."""
        try:
            chunk: StreamChunk | None = self._opened.first
            while chunk is not None:
                if chunk.usage is not None:
                    self.usage = chunk.usage
                yield chunk
                chunk = await anext(self._opened.rest, None)
        except ProviderError as err:
            self.error = err
        finally:
            await self.finish()

    async def finish(self) -> RunSummary:
        """Close the upstream and write the record (once, however the stream ended)."""
        if self.summary is not None:
            return self.summary
        await self._opened.aclose()
        fx, model, usage = self._fx, self.model, self.usage
        latency = elapsed_ms(fx, self._opened_at)
        cost = model.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        call = ModelCall(request_id=self.inp.request_id, model=model, messages=self.inp.messages,
                         step="stream")
        if self.error is not None:
            last = failed_attempt(call, self.error, tries=self._opened.tries, latency_ms=latency)
            last.cost_usd = cost
        else:
            last = Attempt(model=model.id, provider=model.provider_id, outcome="ok", status=200,
                           latency_ms=round(latency, 3), tries=self._opened.tries,
                           cost_usd=cost, input_tokens=usage.prompt_tokens,
                           output_tokens=usage.completion_tokens, step="stream")
        self._attempts.append(last)
        summary = self.inp.summary(fx, self._attempts, self._start)
        if self.error is not None:  # the client already has a 200: the failure is in-band
            summary = summary.model_copy(update={
                "status": "error", "error_class": self.error.error_class,
                "model": model.id, "provider": model.provider_id})
        self.summary = summary
        await fx.record(record_batch(summary, fx.now(), request_body=self.inp.request_body))
        for hook in self.on_finish:
            await hook(summary)
        return summary
