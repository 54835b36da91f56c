"""SSE framing of a durable stream: today's OpenAI wire format, plus event ids.

Each event carries ``id: <log offset>`` (resume with ``Last-Event-ID``); the chunks are
built by ``api/streaming.py``'s builders, so both executors send the same chunk sequence
for the same upstream answer. The end adds an SSE comment naming the model that finished
(``: tokenhub finished-by=<model> provider=<provider>``; clients ignore comments), then
the usage chunk (when asked for) and ``[DONE]``, or the in-band error event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import StreamingResponse

from api.response_cache import CachedStream
from api.responses import run_link
from api.stream_relay import DurableStream, StreamBroken
from api.streaming import _chunk_event, _sse, cached_response, openai_events, sse_response
from shared.contracts import StreamChunk
from shared.orchestration.stream import ChatStream
from shared.orchestration.streamlog import StreamEvent


def _with_id(offset: int, frame: bytes) -> bytes:
    return f"id: {offset}\n".encode() + frame


def _end_frames(stream: DurableStream, completion_id: str, created: int, offset: int,
                ev: StreamEvent) -> list[bytes]:
    # in the block of the first end event, not a block of its own: after an event with an
    # id, a comment-only block is an empty event to some clients (the openai SDK's)
    finished = f": tokenhub finished-by={ev.model} provider={ev.provider}\n".encode()
    if ev.error is not None:
        return [finished + _with_id(offset, _sse({"error": {
            "type": "upstream_stream_error", "message": ev.error.get("message", ""),
            "request_id": stream.request_id}}))]
    frames = []
    if stream.include_usage and ev.usage is not None:
        u = ev.usage
        frames.append(_with_id(offset, _sse({
            "id": completion_id, "object": "chat.completion.chunk", "created": created,
            "model": ev.model, "choices": [],
            "usage": {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                      "total_tokens": u.total_tokens}})))
    frames.append(_with_id(offset, _sse("[DONE]")))
    return [finished + frames[0], *frames[1:]]


async def durable_events(stream: DurableStream, *, first: bool = True) -> AsyncIterator[bytes]:
    """The run's events as SSE; ``first``: the first chunk carries the assistant role (not
    on a resume that starts mid-answer)."""
    completion_id = f"chatcmpl-{stream.request_id}"
    created = int(time.time())
    try:
        while True:
            try:
                offset, ev = await stream.next()
            except StreamBroken as exc:
                yield _sse({"error": {"type": "upstream_stream_error", "message": str(exc),
                                      "request_id": stream.request_id}})
                return
            if ev.kind == "end":
                for frame in _end_frames(stream, completion_id, created, offset, ev):
                    yield frame
                return
            chunk = StreamChunk(delta=ev.delta, finish_reason=ev.finish_reason,
                                tool_calls=ev.tool_calls)
            yield _with_id(offset, _sse(_chunk_event(completion_id, ev.model or "", created,
                                                     chunk, first)))
            first = False
    finally:
        stream.client_gone()  # no-op once the end was sent
        stream.aclose()


async def _watch_disconnect(request: Request, stream: DurableStream) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            stream.client_gone()
            return


def durable_response(stream: DurableStream, request: Request, *,
                     first: bool = True) -> StreamingResponse:
    """The SSE response; with ``X-TokenHub-Cancel-On-Disconnect: true`` a client that hangs
    up cancels the run (by default the run goes on, and may be resumed)."""
    stream.cancel_on_disconnect = (
        request.headers.get("x-tokenhub-cancel-on-disconnect", "").lower() == "true")
    headers = {"X-TokenHub-Executor": "temporal", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no", "X-Request-ID": stream.request_id,
               **run_link(request.app.state.tokenhub.settings, stream.request_id, "temporal")}
    if stream.cache is not None:
        headers["X-TokenHub-Cache"] = stream.cache
    if stream.model_id and stream.provider_id:
        headers.update({"X-TokenHub-Model": stream.model_id,
                        "X-TokenHub-Provider": stream.provider_id})

    async def body() -> AsyncIterator[bytes]:
        watcher = asyncio.ensure_future(_watch_disconnect(request, stream)) \
            if stream.cancel_on_disconnect else None
        try:
            async for frame in durable_events(stream, first=first):
                yield frame
        finally:
            if watcher is not None:
                watcher.cancel()

    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


def stream_response(opened: ChatStream | DurableStream | CachedStream, request: Request, *,
                    include_usage: bool) -> StreamingResponse:
    """The SSE response of a stream, whichever runtime opened it (or the cache)."""
    if isinstance(opened, CachedStream):
        return cached_response(opened.outcome, include_usage=include_usage)
    if isinstance(opened, DurableStream):
        return durable_response(opened, request)
    return sse_response(opened, openai_events(opened, include_usage=include_usage))
