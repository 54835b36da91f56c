"""bench/upstream.py's streaming mode speaks OpenAI SSE (what bench/streams.py measures)."""

from __future__ import annotations

import asyncio
import json

import httpx

from bench.upstream import Upstream


async def test_a_stream_request_gets_the_shape_its_model_names() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
            for _ in range(2):  # the connection is kept alive between streams
                body = {"model": "stream-5x1", "stream": True, "messages": [],
                        "stream_options": {"include_usage": True}}
                async with c.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions",
                                    json=body) as r:
                    assert r.headers["content-type"] == "text/event-stream"
                    data = [line[6:] async for line in r.aiter_lines()
                            if line.startswith("data: ")]
                assert data[-1] == "[DONE]"
                chunks = [json.loads(d) for d in data[:-1]]
                assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
                text = "".join(ch["choices"][0]["delta"].get("content") or ""
                               for ch in chunks if ch["choices"])
                assert text == "".join(f"tok{i:04d} " for i in range(5))
                assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
                assert chunks[-1]["usage"]["completion_tokens"] == 10
            r2 = await c.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                              json={"model": "bench-model", "messages": []})
            assert r2.json()["object"] == "chat.completion"  # not streamed: as before
    finally:
        server.close()
        await server.wait_closed()
