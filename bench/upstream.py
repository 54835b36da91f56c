"""A fast fake OpenAI upstream for benchmarks: raw asyncio (uvloop), HTTP/1.1 keep-alive.

POST /v1/chat/completions → a fixed chat.completion (after ``--delay-ms``);
GET /v1/models → one model; anything else → 404. No framework, so it is not the bottleneck:
    python -m bench.upstream --port 9100 [--delay-ms 50]

Streaming mode: a request with ``"stream": true`` gets an OpenAI SSE answer (chunked
transfer encoding): a role chunk, ``--stream-chunks`` content chunks ``--stream-gap-ms``
apart (8 characters each), a finish chunk, the usage chunk when
``stream_options.include_usage`` is asked for, and ``[DONE]``. A model named
``stream-<chunks>x<gap ms>`` (e.g. ``stream-200x50``) picks its own shape, so one upstream
serves every stream profile of the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from bench."},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
}).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "bench-model", "object": "model",
                                                 "created": 1700000000, "owned_by": "bench"}]}
                    ).encode()


def _response(body: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


CHAT = _response(BODY)
LIST = _response(MODELS)
NOT_FOUND = _response(b'{"error": {"message": "not found", "type": "invalid_request_error"}}'
                      ).replace(b"200 OK", b"404 Not Found", 1)


def _reply(head: bytes) -> bytes:
    """The answer to a lower-cased request head."""
    if head.startswith(b"post /v1/chat/completions"):
        return CHAT
    if head.startswith(b"get /v1/models"):
        return LIST
    return NOT_FOUND


STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
               b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
_SHAPE = re.compile(rb'"model"\s*:\s*"stream-(\d+)x(\d+)"')
_STREAM = re.compile(rb'"stream"\s*:\s*true')


def _chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(choices: list[object], **extra: object) -> bytes:
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": "bench-model", "choices": choices, **extra}
    return _chunked(b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n")


def stream_events(chunks: int, include_usage: bool) -> tuple[list[bytes], bytes]:
    """(the events sent one per gap: role, content pieces, finish; the tail sent with the
    finish: usage, [DONE], end of body)."""
    events = [_event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                       "finish_reason": None}])]
    events += [_event([{"index": 0, "delta": {"content": f"tok{i:04d} "},
                        "finish_reason": None}]) for i in range(chunks)]
    events.append(_event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    tail = b""
    if include_usage:
        tail += _event([], usage={"prompt_tokens": 5, "completion_tokens": chunks * 2,
                                  "total_tokens": 5 + chunks * 2})
    tail += _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"
    return events, tail


_TASKS: set[asyncio.Task[None]] = set()  # streams being sent (kept referenced)


class Upstream(asyncio.Protocol):
    delay_s = 0.0
    stream_chunks = 50
    stream_gap_s = 0.01

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            idx = head.find(b"content-length:")
            if idx >= 0:
                line_end = head.find(b"\r\n", idx)
                length = int(head[idx + 15: line_end if line_end >= 0 else None])
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[head_end + 4:total]
            self.buf = self.buf[total:]
            if head.startswith(b"post /v1/chat/completions") and _STREAM.search(body):
                shape = _SHAPE.search(body)
                chunks, gap = (int(shape[1]), int(shape[2]) / 1000) if shape else \
                    (self.stream_chunks, self.stream_gap_s)
                task = asyncio.get_running_loop().create_task(
                    self._stream(chunks, gap, b"include_usage" in body))
                _TASKS.add(task)
                task.add_done_callback(_TASKS.discard)
                continue
            reply = _reply(head)
            if self.delay_s:
                asyncio.get_running_loop().call_later(self.delay_s, self._send, reply)
            else:
                self.transport.write(reply)

    async def _stream(self, chunks: int, gap_s: float, include_usage: bool) -> None:
        """One SSE answer, an event every ``gap_s`` (paced on the clock, not by sleeps
        added up, so a late wake-up does not stretch the whole stream)."""
        events, tail = stream_events(chunks, include_usage)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.transport.write(STREAM_HEAD + events[0])
        for i, ev in enumerate(events[1:], 1):
            wait = start + i * gap_s - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.transport.is_closing():
                return
            self.transport.write(ev + tail if i == len(events) - 1 else ev)

    def _send(self, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(reply)


async def serve(port: int, delay_ms: float, stream_chunks: int = 50,
                stream_gap_ms: float = 10) -> None:
    Upstream.delay_s = delay_ms / 1000
    Upstream.stream_chunks, Upstream.stream_gap_s = stream_chunks, stream_gap_ms / 1000
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--stream-chunks", type=int, default=50)
    parser.add_argument("--stream-gap-ms", type=float, default=10)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.delay_ms, args.stream_chunks, args.stream_gap_ms))
