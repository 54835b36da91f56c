"""Streaming chat: routed and streamed in-process (a workflow result cannot stream).

Failover is allowed until the first chunk has been received; after that the
stream is committed to its model. The outcome is recorded like any other run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from api.security import Budget
from api.state import AppState
from shared.contracts import Attempt, RequestRecord, StreamChunk, Usage
from shared.errors import AllProvidersFailed, ProviderError
from shared.orchestration.calls import RetriesExhausted, failed_attempt, provider_call, with_retries
from shared.orchestration.chat import ChatInput, rewards_for
from shared.orchestration.ports import ModelCall
from shared.routing.engine import escalation_order
from shared.routing.types import Candidate


class OpenedStream:
    def __init__(self, cand: Candidate, it: AsyncIterator[StreamChunk], first: StreamChunk,
                 attempts: list[Attempt], started: float) -> None:
        self.cand, self.it, self.first, self.attempts, self.started = (
            cand, it, first, attempts, started)


async def open_stream(state: AppState, inp: ChatInput) -> OpenedStream:
    """Find the first candidate that yields a first chunk (failover before the first byte)."""
    attempts: list[Attempt] = []
    remaining = list(inp.route.candidates)
    while remaining and len(attempts) < inp.max_attempts:
        cand = remaining.pop(0)
        call = ModelCall(request_id=inp.request_id, model=cand.model, messages=inp.messages,
                         parameters=inp.parameters, step="stream")
        started = time.perf_counter()

        async def first_chunk(call: ModelCall = call) -> tuple[AsyncIterator[StreamChunk],
                                                                StreamChunk]:
            adapter = state.registry.get(call.model.provider_id)
            it = aiter(adapter.stream(provider_call(call, state.retry.attempt_timeout_s)))
            try:
                return it, await anext(it)
            except StopAsyncIteration:
                return it, StreamChunk()

        try:
            (it, first), _ = await with_retries(state.retry, state.rng, first_chunk)
        except RetriesExhausted as ex:
            attempts.append(failed_attempt(call, ex.err, tries=ex.tries,
                                           latency_ms=ex.latency_ms))
            remaining = escalation_order(remaining, cand, ex.err.error_class)
            continue
        return OpenedStream(cand, it, first, attempts, started)
    state.observe(attempts)
    raise AllProvidersFailed(f"all {len(attempts)} candidate model(s) failed before streaming",
                             details={"attempts": [a.model_dump() for a in attempts]})


def _sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return f"data: {payload}\n\n".encode()


def _chunk_event(inp: ChatInput, model: str, created: int, chunk: StreamChunk,
                 first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": chunk.delta} if chunk.delta else {}
    if first:
        delta = {"role": "assistant", **delta}
    if chunk.tool_calls:
        delta["tool_calls"] = chunk.tool_calls
    event: dict[str, Any] = {
        "id": f"chatcmpl-{inp.request_id}", "object": "chat.completion.chunk",
        "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
    }
    return event


async def _events(state: AppState, inp: ChatInput, opened: OpenedStream,
                  include_usage: bool, budget: Budget | None) -> AsyncIterator[bytes]:
    model = opened.cand.model
    created = int(time.time())
    usage = Usage()
    error: ProviderError | None = None
    chunk: StreamChunk | None = opened.first
    first = True
    try:
        while chunk is not None:
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.delta or chunk.finish_reason or chunk.tool_calls or first:
                yield _sse(_chunk_event(inp, model.id, created, chunk, first))
                first = False
            chunk = await anext(opened.it, None)
    except ProviderError as err:  # cut mid-stream: committed, report in-band
        error = err
        yield _sse({"error": {"type": "upstream_stream_error", "message": err.message,
                              "request_id": inp.request_id}})
    finally:
        cost = _finish(state, inp, opened, usage, error)
        if budget is not None:
            await budget.settle(cost)
        aclose = getattr(opened.it, "aclose", None)
        if aclose is not None:
            await aclose()
    if error is None:
        if include_usage:
            yield _sse({"id": f"chatcmpl-{inp.request_id}", "object": "chat.completion.chunk",
                        "created": created, "model": model.id, "choices": [],
                        "usage": {"prompt_tokens": usage.prompt_tokens,
                                  "completion_tokens": usage.completion_tokens,
                                  "total_tokens": usage.total_tokens}})
        yield _sse("[DONE]")


def _finish(state: AppState, inp: ChatInput, opened: OpenedStream, usage: Usage,
            error: ProviderError | None) -> float:
    model = opened.cand.model
    latency = (time.perf_counter() - opened.started) * 1000
    cost = model.cost_usd(usage.prompt_tokens, usage.completion_tokens)
    call = ModelCall(request_id=inp.request_id, model=model, messages=inp.messages)
    last = (failed_attempt(call, error, tries=1, latency_ms=latency) if error else
            Attempt(model=model.id, provider=model.provider_id, outcome="ok", status=200,
                    latency_ms=round(latency, 3), cost_usd=cost, step="stream"))
    attempts = [*opened.attempts, last]
    now = datetime.now(UTC)
    record = RequestRecord(
        request_id=inp.request_id, created_at=now, kind="stream", mode=inp.policy.mode,
        model=model.id, provider=model.provider_id, input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens, cost_usd=cost, latency_ms=latency,
        status="error" if error else "ok", http_status=200,
        error_class=error.error_class if error else None, executor="local",
        api_key_id=inp.api_key_id, attempts=attempts, request_body=inp.request_body)
    state.log_writer.submit(record, rewards_for(
        request_id=inp.request_id, size_bucket=inp.size_bucket,
        budget_ms=inp.policy.max_latency_ms, attempts=attempts, now=now))
    state.observe(attempts)
    state.metrics.executor.labels("local").inc()
    if not error:
        state.metrics.tokens.labels(model.id, "input").inc(usage.prompt_tokens)
        state.metrics.tokens.labels(model.id, "output").inc(usage.completion_tokens)
        state.metrics.cost.labels(model.id).inc(cost)
    return cost


async def native_stream(state: AppState, inp: ChatInput, include_usage: bool = True,
                        budget: Budget | None = None) -> StreamingResponse:
    """Open the stream (failover before the first byte) and return the SSE response."""
    try:
        opened = await open_stream(state, inp)
    except BaseException:
        if budget is not None:
            await budget.settle(0.0)
        raise
    model = opened.cand.model
    headers = {"X-TokenHub-Model": model.id, "X-TokenHub-Provider": model.provider_id,
               "X-TokenHub-Executor": "local", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(state, inp, opened, include_usage, budget),
                             media_type="text/event-stream", headers=headers)
