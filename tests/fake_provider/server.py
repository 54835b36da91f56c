"""A fake LLM provider speaking the real wire formats (OpenAI and Anthropic, JSON and SSE).

Behaviour is scripted over HTTP, so any process can drive it (tests, bench, a
killed worker's replacement):

- ``POST /_control/script`` ``{"model": "<upstream model or *>", "steps": [...]}``: one step
  consumed per call to that model, then the default. A step is ``{"status": 429,
  "retry_after": 2}``, ``{"status": 500}``, ``{"kind": "context_overflow"}``,
  ``{"kind": "malformed"}``, ``{"kind": "cut_stream"}``, ``{"delay_ms": 300}`` or
  ``{"kind": "ok", "content": "..."}`` (keys combine: ``{"delay_ms": 50, "status": 503}``),
  ``{"kind": "echo_auth", "status": 401}``: an error whose text repeats the request's
  credential headers (as some upstreams do), for the redaction tests.
  Streams also take ``"chunk_delay_ms"`` (before every event after the first),
  ``"usage_delay_ms"`` (before the OpenAI usage event) and ``"stream_usage": false`` (no
  usage event even when asked for one, like llama.cpp).
- ``POST /_control/default`` ``{"delay_ms": 0, "content": null, ...}`` (the same keys);
  ``POST /_control/reset``.
- OpenAI wire: a body with ``"logprobs": true`` gets ``choices[0].logprobs`` (one entry per
  whitespace-separated piece of the text, ``logprob`` -0.5, ``top_logprobs`` as many as
  ``top_logprobs`` asked for), in the JSON answer and on each stream chunk.
- ``POST /_control/models`` ``{"data": [...]}`` sets what ``GET /v1/models`` lists (default:
  ``fake-small`` and ``fake-large`` with vLLM's ``max_model_len``), ``{"raw": "...",
  "status": 200}`` makes it answer that body instead (garbage, an error).
- ``POST /v1/embeddings`` (OpenAI format; ``encoding_format`` float or base64,
  ``dimensions``, default 16): deterministic unit vectors; scripted steps apply.
  Streams: ``{"chunks": 50, "gap_ms": 10}`` splits the answer into 50 pieces sent 10 ms
  apart (default 3, 0 ms); ``{"kind": "cut_stream", "after_chunks": 2}`` cuts the stream
  after 2 content pieces (default: half-way). Both keys work in the default too.
- Continuations: a request whose messages end with an assistant message (a prefill), or
  with an assistant message and a user message asking to continue it, gets only the part
  of its answer after that assistant text (when its answer starts with it): a model that
  continues exactly, as Anthropic and vLLM do with a prefix. Recorded as ``prefix``.
- ``GET /_control/calls``: every call received (path, wire, model, stream, messages,
  completed once the response was fully sent) and counts per model. A stream also has
  ``sent`` (events written so far) and, when the client closed the connection before the
  end, ``closed_after_events`` (events written before the close was seen: at the latest
  at the next event's write) and ``closed_at`` (``time.time()`` then). Auth headers are
  never stored, only whether one was present and the SHA-256 of the key it carried
  (``auth_sha256``, so a test can check which key was sent).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import struct
import time
from collections import deque
from typing import Any

from aiohttp import web

_ids = itertools.count(1)
DEFAULT_MODELS = [
    {"id": "fake-small", "object": "model", "owned_by": "vllm", "max_model_len": 4096},
    {"id": "fake-large", "object": "model", "owned_by": "vllm", "max_model_len": 32768}]
STATE: web.AppKey[State] = web.AppKey("state")


class State:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.models: dict[str, Any] = {"data": DEFAULT_MODELS}
        self.scripts: dict[str, deque[dict[str, Any]]] = {}
        self.default: dict[str, Any] = {"delay_ms": 0, "content": None}
        self.calls: list[dict[str, Any]] = []

    def next_step(self, model: str) -> dict[str, Any]:
        for key in (model, "*"):
            queue = self.scripts.get(key)
            if queue:
                return queue.popleft()
        return {}


def _last_user(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return "".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
            return str(c or "")
    return ""


def _content(state: State, step: dict[str, Any], model: str, messages: list[Any]) -> str:
    if step.get("content") is not None:
        return str(step["content"])
    if state.default.get("content") is not None:
        return str(state.default["content"])
    return f"[{model}] {_last_user(messages)[:200]}"


def _tokens(messages: list[Any], text: str) -> tuple[int, int]:
    prompt = sum(len(json.dumps(m.get("content", ""))) for m in messages) // 4 + 1
    return prompt, len(text) // 4 + 1


def _key_digest(request: web.Request) -> str | None:
    auth = request.headers.get("authorization", "")
    key = auth[7:].strip() if auth[:7].lower() == "bearer " else request.headers.get("x-api-key")
    return hashlib.sha256(key.encode()).hexdigest() if key else None


def _error(status: int, wire: str, message: str, code: str, retry_after: Any = None
           ) -> web.Response:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    if wire == "anthropic":
        body = {"type": "error", "error": {"type": code, "message": message}}
    else:
        body = {"error": {"message": message, "type": code, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _prefix(messages: list[dict[str, Any]]) -> str | None:
    """The assistant text a continuation request asks to continue, if it is one."""
    tail = messages[-2:]
    if tail and tail[-1].get("role") == "assistant":
        return str(tail[-1].get("content") or "")
    if len(tail) == 2 and tail[0].get("role") == "assistant" and \
            "Continue it exactly" in str(tail[1].get("content")):
        return str(tail[0].get("content") or "")
    return None


def _pieces(text: str, n: int) -> list[str]:
    size = max(1, len(text) // max(1, n))
    return [text[i:i + size] for i in range(0, len(text), size)]


async def _sse(request: web.Request, events: list[bytes], cut_at: int | None,
               gap_s: float = 0.0, pace: dict[str, Any] | None = None,
               call: dict[str, Any] | None = None) -> web.StreamResponse:
    call = call if call is not None else {}
    call["sent"] = 0
    try:
        return await _send_sse(request, events, cut_at, gap_s, pace or {}, call)
    except (ConnectionError, asyncio.CancelledError):  # the client closed the connection
        call.setdefault("closed_after_events", call["sent"])
        call.setdefault("closed_at", time.time())
        raise


async def _send_sse(request: web.Request, events: list[bytes], cut_at: int | None,
                    gap_s: float, pace: dict[str, Any], call: dict[str, Any]
                    ) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream",
                                       "cache-control": "no-cache"})
    await resp.prepare(request)
    for i, ev in enumerate(events):
        if cut_at is not None and i >= cut_at:
            transport = request.transport
            if transport is not None:
                for _ in range(100):  # what was written reaches the client, then the cut
                    if not transport.get_write_buffer_size():
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.01)
                transport.abort()  # the stream is cut mid-way
            return resp
        delay = pace.get("chunk_delay_ms", 0) if i else 0
        if b'"usage": {"prompt_tokens"' in ev:
            delay += pace.get("usage_delay_ms", 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        if gap_s and i:
            await asyncio.sleep(gap_s)
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the stream")
        await resp.write(ev)
        call["sent"] = i + 1
    await resp.write_eof()
    return resp


def _logprobs(text: str, body: dict[str, Any]) -> dict[str, Any] | None:
    if not body.get("logprobs"):
        return None
    top = int(body.get("top_logprobs") or 0)
    tokens = [t for t in re.split(r"(\s+)", text) if t]
    return {"content": [
        {"token": t, "logprob": -0.5, "bytes": list(t.encode()),
         "top_logprobs": [{"token": t, "logprob": -0.5, "bytes": list(t.encode())}] * top}
        for t in tokens]}


def _openai_events(cid: str, model: str, text: str, usage: tuple[int, int],
                   include_usage: bool, body: dict[str, Any], chunks: int = 3) -> list[bytes]:
    def ev(data: Any) -> bytes:
        return f"data: {json.dumps(data)}\n\n".encode()

    base = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}
    pieces = _pieces(text, chunks)
    out = [ev({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]})]
    out += [ev({**base, "choices": [{"index": 0, "delta": {"content": p},
                                     "logprobs": _logprobs(p, body),
                                     "finish_reason": None}]}) for p in pieces]
    out.append(ev({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if include_usage:
        out.append(ev({**base, "choices": [], "usage": {
            "prompt_tokens": usage[0], "completion_tokens": usage[1],
            "total_tokens": sum(usage)}}))
    out.append(b"data: [DONE]\n\n")
    return out


def _anthropic_events(mid: str, model: str, text: str, usage: tuple[int, int],
                      chunks: int = 3) -> list[bytes]:
    def ev(name: str, data: Any) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    pieces = _pieces(text, chunks)
    out = [ev("message_start", {"message": {
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "usage": {"input_tokens": usage[0], "output_tokens": 1}}}),
        ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})]
    out += [ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in pieces]
    out += [ev("content_block_stop", {"index": 0}),
            ev("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                 "usage": {"output_tokens": usage[1]}}),
            ev("message_stop", {})]
    return out


async def _chat(request: web.Request, wire: str) -> web.StreamResponse:
    state: State = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, wire, "body is not JSON", "invalid_request_error")
    model = str(body.get("model", ""))
    messages = list(body.get("messages") or [])
    if wire == "anthropic" and body.get("system"):
        messages = [{"role": "system", "content": body["system"]}, *messages]
    stream = bool(body.get("stream"))
    call = {"n": next(_ids), "path": request.path, "wire": wire, "model": model,
            "stream": stream, "messages": messages, "completed": False,
            "auth": bool(request.headers.get("authorization") or
                         request.headers.get("x-api-key")),
            "auth_sha256": _key_digest(request),
            "params": {k: v for k, v in body.items() if k not in ("messages", "model", "system")}}
    state.calls.append(call)
    step = state.next_step(model)
    call["step"] = step
    delay = step.get("delay_ms", state.default.get("delay_ms", 0))
    if delay:
        await asyncio.sleep(delay / 1000)
    resp = await _respond(request, wire, step, model, messages, body, stream, call)
    if not resp.prepared:  # send it here, so "completed" means fully sent to the client
        await resp.prepare(request)
        await resp.write_eof()
    transport = request.transport
    call["completed"] = transport is not None and not transport.is_closing()
    return resp


async def _respond(request: web.Request, wire: str, step: dict[str, Any], model: str,
                   messages: list[Any], body: dict[str, Any], stream: bool,
                   call: dict[str, Any]) -> web.StreamResponse:
    state: State = request.app[STATE]
    kind = step.get("kind", "ok")
    status = int(step.get("status", 200))
    if kind == "context_overflow":
        code = "context_length_exceeded"
        msg = ("prompt is too long: 300000 tokens > 200000 maximum" if wire == "anthropic" else
               "This model's maximum context length is 8192 tokens (context_length_exceeded)")
        return _error(status if status != 200 else 400, wire, msg, code)
    if kind == "echo_auth":
        seen = {k: v for k, v in request.headers.items()
                if k.lower() in ("authorization", "x-api-key")}
        key = next(iter(seen.values()), "").removeprefix("Bearer ")
        return _error(status if status != 200 else 401, wire,
                      f"invalid credentials: headers {seen}; key {key} rejected", "auth_error")
    if status == 429:
        return _error(429, wire, "rate limited by fake provider", "rate_limit_error",
                      step.get("retry_after"))
    if status >= 400:
        return _error(status, wire, f"fake provider error {status}", "api_error")
    if kind == "malformed":
        return web.Response(text='{"choices": [ {"oops"', content_type="application/json")
    text = _content(state, step, model, messages)
    prefix = _prefix(messages)
    if prefix is not None:
        call["prefix"] = prefix
        for p in (prefix, prefix.rstrip()):
            if p and text.startswith(p):
                text = text[len(p):]
                break
    usage = _tokens(messages, text)
    opt = {**state.default, **step}
    chunks, gap_s = int(opt.get("chunks", 3)), float(opt.get("gap_ms", 0)) / 1000
    pace = {k: opt.get(k, 0) for k in ("chunk_delay_ms", "usage_delay_ms")}
    lead = 2 if wire == "anthropic" else 1  # events before the first content piece

    def cut_at(events: list[bytes]) -> int | None:
        if kind != "cut_stream":
            return None
        if "after_chunks" in opt:
            return lead + int(opt["after_chunks"])
        return max(1, len(events) // 2)

    if wire == "anthropic":
        mid = f"msg_fake_{next(_ids)}"
        if stream:
            events = _anthropic_events(mid, model, text, usage, chunks)
            return await _sse(request, events, cut_at(events), gap_s, pace, call)
        return web.json_response({
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": usage[0],
                                             "output_tokens": usage[1]}})
    cid = f"chatcmpl-fake-{next(_ids)}"
    if stream:
        include = bool((body.get("stream_options") or {}).get("include_usage")) and \
            opt.get("stream_usage", True)
        events = _openai_events(cid, model, text, usage, include, body, chunks)
        return await _sse(request, events, cut_at(events), gap_s, pace, call)
    return web.json_response({
        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": _logprobs(text, body), "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                  "total_tokens": sum(usage)}})


async def _openai(request: web.Request) -> web.StreamResponse:
    return await _chat(request, "openai")


async def _anthropic(request: web.Request) -> web.StreamResponse:
    return await _chat(request, "anthropic")


async def _models(request: web.Request) -> web.Response:
    spec = request.app[STATE].models
    if "raw" in spec:
        return web.Response(text=str(spec["raw"]), status=int(spec.get("status", 200)),
                            content_type="application/json")
    return web.json_response({"object": "list", "data": spec["data"]})


async def _set_models(request: web.Request) -> web.Response:
    request.app[STATE].models = await request.json()
    return web.json_response({"ok": True})


def _embedding(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [digest[i % len(digest)] - 127.5 for i in range(dims)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


async def _embeddings(request: web.Request) -> web.Response:
    state: State = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "openai", "body is not JSON", "invalid_request_error")
    model = str(body.get("model", ""))
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else raw
    call = {"n": next(_ids), "path": request.path, "wire": "openai", "model": model,
            "stream": False, "messages": [], "completed": True, "input": raw,
            "auth": bool(request.headers.get("authorization")),
            "auth_sha256": _key_digest(request),
            "params": {k: v for k, v in body.items() if k not in ("input", "model")}}
    state.calls.append(call)
    step = state.next_step(model)
    delay = step.get("delay_ms", state.default.get("delay_ms", 0))
    if delay:
        await asyncio.sleep(delay / 1000)
    status = int(step.get("status", 200))
    if status >= 400:
        return _error(status, "openai", f"fake provider error {status}", "api_error",
                      step.get("retry_after"))
    if not inputs:
        return _error(400, "openai", "input is empty", "invalid_request_error")
    dims = int(body.get("dimensions") or 16)
    data = []
    tokens = 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += len(text) // 4 + 1
        vec = _embedding(text, dims)
        value: Any = vec
        if body.get("encoding_format") == "base64":
            value = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
        data.append({"object": "embedding", "index": i, "embedding": value})
    return web.json_response({"object": "list", "data": data, "model": model,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


async def _script(request: web.Request) -> web.Response:
    data = await request.json()
    state: State = request.app[STATE]
    state.scripts.setdefault(str(data.get("model", "*")), deque()).extend(data["steps"])
    return web.json_response({"ok": True})


async def _default(request: web.Request) -> web.Response:
    request.app[STATE].default.update(await request.json())
    return web.json_response({"ok": True})


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"ok": True})


async def _calls(request: web.Request) -> web.Response:
    calls = request.app[STATE].calls
    counts: dict[str, int] = {}
    for c in calls:
        counts[c["model"]] = counts.get(c["model"], 0) + 1
    return web.json_response({"calls": calls, "counts": counts})


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = State()
    app.router.add_post("/v1/chat/completions", _openai)
    app.router.add_post("/v1/messages", _anthropic)
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_post("/_control/models", _set_models)
    app.router.add_post("/_control/script", _script)
    app.router.add_post("/_control/default", _default)
    app.router.add_post("/_control/reset", _reset)
    app.router.add_get("/_control/calls", _calls)
    return app
