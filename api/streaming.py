"""SSE framing of a streamed chat (OpenAI ``chat.completion.chunk`` events, ``[DONE]``).

Only the wire format lives here: which model streams, failover before the first chunk
and the run's record are the orchestration's (shared/orchestration/stream.py), budget
and metrics the request service's (api/service.py). Any runtime that yields
``StreamChunk``s can be framed by this module.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import StreamingResponse

from shared.contracts import StreamChunk
from shared.orchestration.chat import ChatOutcome
from shared.orchestration.stream import ChatStream


def _sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return f"data: {payload}\n\n".encode()


def _chunk_event(completion_id: str, model: str, created: int, chunk: StreamChunk,
                 first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {"content": chunk.delta} if chunk.delta else {}
    if first:
        delta = {"role": "assistant", **delta}
    if chunk.tool_calls:
        delta["tool_calls"] = chunk.tool_calls
    choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}
    if chunk.logprobs is not None:
        choice["logprobs"] = chunk.logprobs
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [choice]}


async def openai_events(stream: ChatStream, *, include_usage: bool) -> AsyncIterator[bytes]:
    """The stream as OpenAI SSE events; a mid-stream failure is an in-band error event."""
    model = stream.model.id
    completion_id = f"chatcmpl-{stream.inp.request_id}"
    created = int(time.time())
    first = True
    async for chunk in stream.chunks():
        if chunk.delta or chunk.finish_reason or chunk.tool_calls or chunk.logprobs or first:
            yield _sse(_chunk_event(completion_id, model, created, chunk, first))
            first = False
    if stream.error is not None:
        yield _sse({"error": {"type": "upstream_stream_error", "message": stream.error.message,
                              "request_id": stream.inp.request_id}})
        return
    if stream.output_error is not None:  # the answer failed output_format (json) at its end
        yield _sse({"error": {"type": stream.output_error.error_type,
                              "message": stream.output_error.message,
                              "request_id": stream.inp.request_id}})
        return
    if include_usage:
        usage = stream.charged_usage()  # what the run is charged: counted if not reported
        yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": usage.prompt_tokens,
                              "completion_tokens": usage.completion_tokens,
                              "total_tokens": usage.total_tokens}})
    yield _sse("[DONE]")


REPLAY_CHUNK_CHARS = 256


async def cached_events(outcome: ChatOutcome, *, include_usage: bool) -> AsyncIterator[bytes]:
    """A cached answer replayed as the stream it would have been: the text in chunks, the
    tool calls, the finish reason, the usage chunk (when asked for), ``[DONE]``."""
    r, model = outcome.response, outcome.negotiated_model
    completion_id = f"chatcmpl-{outcome.request_id}"
    created = int(time.time())
    text = r.message.content
    pieces = [text[i:i + REPLAY_CHUNK_CHARS] for i in range(0, len(text), REPLAY_CHUNK_CHARS)]
    chunks = [StreamChunk(delta=p) for p in pieces] or [StreamChunk()]
    if r.message.tool_calls:
        chunks.append(StreamChunk(tool_calls=r.message.tool_calls))
    chunks.append(StreamChunk(finish_reason=r.finish_reason or "stop"))
    for i, chunk in enumerate(chunks):
        yield _sse(_chunk_event(completion_id, model, created, chunk, i == 0))
    if include_usage:
        u = r.usage
        yield _sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": [],
                    "usage": {"prompt_tokens": u.prompt_tokens,
                              "completion_tokens": u.completion_tokens,
                              "total_tokens": u.total_tokens}})
    yield _sse("[DONE]")


def cached_response(outcome: ChatOutcome, *, include_usage: bool) -> StreamingResponse:
    headers = {"X-TokenHub-Model": outcome.negotiated_model,
               "X-TokenHub-Provider": outcome.provider, "X-TokenHub-Executor": "cache",
               "X-TokenHub-Cache": "hit", "X-TokenHub-Cost-USD": f"{0:.8f}",
               "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(cached_events(outcome, include_usage=include_usage),
                             media_type="text/event-stream", headers=headers)


def sse_response(stream: ChatStream, events: AsyncIterator[bytes]) -> StreamingResponse:
    model = stream.model
    headers = {"X-TokenHub-Model": model.id, "X-TokenHub-Provider": model.provider_id,
               "X-TokenHub-Executor": stream.executor, "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}
    if stream.cache is not None:
        headers["X-TokenHub-Cache"] = stream.cache
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
