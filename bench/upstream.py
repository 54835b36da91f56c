"""A fast fake OpenAI upstream for benchmarks: raw asyncio (uvloop), HTTP/1.1 keep-alive.

POST /v1/chat/completions → a fixed chat.completion (after ``--delay-ms``);
GET /v1/models → one model; anything else → 404. No framework, so it is not the bottleneck:
    python -m bench.upstream --port 9100 [--delay-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json

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


class Upstream(asyncio.Protocol):
    delay_s = 0.0

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
            self.buf = self.buf[total:]
            reply = _reply(head)
            if self.delay_s:
                asyncio.get_running_loop().call_later(self.delay_s, self._send, reply)
            else:
                self.transport.write(reply)

    def _send(self, reply: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(reply)


async def serve(port: int, delay_ms: float) -> None:
    Upstream.delay_s = delay_ms / 1000
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.port, args.delay_ms))
