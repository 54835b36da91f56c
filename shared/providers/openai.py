"""OpenAI chat completions adapter; vLLM (OpenAI-compatible, several endpoints) builds on it."""

from __future__ import annotations

import base64
import itertools
import struct
from collections.abc import AsyncIterator
from typing import Any

import orjson

from shared.contracts import Completion, StreamChunk, Usage
from shared.errors import ProviderError
from shared.providers.base import (
    DiscoveredModel,
    EmbeddingCall,
    Embeddings,
    ProbeResult,
    ProviderCall,
)
from shared.providers.http import (
    HttpClient,
    classify_status,
    fetch_models,
    malformed,
    probe_models,
    upstream_text,
)


def _usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    return Usage(prompt_tokens=int(data.get("prompt_tokens") or 0),
                 completion_tokens=int(data.get("completion_tokens") or 0))


def parse_completion(data: Any, provider_id: str) -> Completion:
    try:
        choice = data["choices"][0]
        msg = choice.get("message") or {}
        content = msg.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError("content is not a string")
        logprobs = choice.get("logprobs")
        return Completion(content=content or "", finish_reason=choice.get("finish_reason"),
                          tool_calls=msg.get("tool_calls"),
                          logprobs=logprobs if isinstance(logprobs, dict) else None,
                          usage=_usage(data.get("usage")) or Usage(),
                          upstream_model=data.get("model"), upstream_id=data.get("id"))
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise malformed(provider_id, f"unexpected completion shape ({exc})") from None


def _vector(value: Any) -> list[float]:
    """An embedding as floats (a float array, or OpenAI's base64 of little-endian float32)."""
    if isinstance(value, str):
        raw = base64.b64decode(value, validate=True)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if not isinstance(value, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise TypeError("embedding is not a list of numbers")
    return [float(x) for x in value]


def parse_embeddings(data: Any, provider_id: str, count: int) -> Embeddings:
    try:
        items = sorted(data["data"], key=lambda d: int(d.get("index", 0)))
        vectors = [_vector(d["embedding"]) for d in items]
        if len(vectors) != count:
            raise ValueError(f"{len(vectors)} embeddings for {count} inputs")
        return Embeddings(vectors=vectors, usage=_usage(data.get("usage")) or Usage(),
                          upstream_model=data.get("model"))
    except (KeyError, TypeError, AttributeError, ValueError, struct.error) as exc:
        raise malformed(provider_id, f"unexpected embeddings shape ({exc})") from None


def input_count(value: str | list[str] | list[int] | list[list[int]]) -> int:
    """How many embeddings an input asks for (a string or one token array: one)."""
    if isinstance(value, str) or (value and isinstance(value[0], int)):
        return 1
    return len(value)


class OpenAIAdapter:
    """POST {base}/chat/completions with a Bearer key. One attempt per call."""

    type = "openai"

    def __init__(self, provider_id: str, *, client: HttpClient, base_urls: list[str],
                 api_key: str | None = None, stream_usage: bool = True) -> None:
        self.id = provider_id
        self._client = client
        self._urls = [u.rstrip("/") for u in base_urls]
        self._next = itertools.cycle(range(len(self._urls)))
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._json_headers = {**self._headers, "content-type": "application/json"}
        self._sse_headers = {**self._json_headers, "accept": "text/event-stream"}
        self._stream_usage = stream_usage

    def _base(self) -> str:
        return self._urls[next(self._next)]

    def _body(self, call: ProviderCall, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {**call.parameters, "model": call.upstream_model,
                                "messages": call.messages}
        if stream:
            body["stream"] = True
            if self._stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, call: ProviderCall) -> Completion:
        resp = await self._client.post(f"{self._base()}/chat/completions",
                                       orjson.dumps(self._body(call, False)),
                                       self._json_headers, provider_id=self.id,
                                       timeout_s=call.timeout_s,
                                       model=call.upstream_model)
        if resp.status >= 400:
            raise classify_status(resp.status, resp.text, resp.headers, provider_id=self.id)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise malformed(self.id, "body is not JSON") from None
        return parse_completion(data, self.id)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        async with self._client.stream(f"{self._base()}/chat/completions",
                                       orjson.dumps(self._body(call, True)),
                                       self._sse_headers, provider_id=self.id,
                                       timeout_s=call.timeout_s,
                                       model=call.upstream_model) as lines:
            async for chunk in self._events(lines):
                yield chunk

    async def _events(self, lines: AsyncIterator[str]) -> AsyncIterator[StreamChunk]:
        done = False
        async for line in lines:
            if not line.startswith("data:"):
                continue
            payload = line[5:].strip()
            if payload == "[DONE]":
                done = True
                break
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError:
                raise malformed(self.id, "stream event is not JSON") from None
            if isinstance(data, dict) and "error" in data:
                raise ProviderError(f"upstream {self.id} stream error: "
                                    f"{upstream_text(str(data['error']))}"[:500],
                                    error_class="transient", provider_id=self.id)
            chunk = self._chunk(data)
            if chunk is not None:
                yield chunk
        if not done:
            raise ProviderError(f"upstream {self.id} stream ended before [DONE]",
                                error_class="transient", provider_id=self.id)

    def _chunk(self, data: Any) -> StreamChunk | None:
        try:
            choices = data.get("choices") or []
            usage = _usage(data.get("usage"))
            if not choices:
                return StreamChunk(usage=usage) if usage else None
            delta = choices[0].get("delta") or {}
            logprobs = choices[0].get("logprobs")
            return StreamChunk(delta=delta.get("content") or "",
                               finish_reason=choices[0].get("finish_reason"),
                               tool_calls=delta.get("tool_calls"), usage=usage,
                               logprobs=logprobs if isinstance(logprobs, dict) else None)
        except (AttributeError, IndexError, TypeError) as exc:
            raise malformed(self.id, f"unexpected chunk shape ({exc})") from None

    async def probe(self) -> ProbeResult:
        return await probe_models(self._client, f"{self._base()}/models", self._headers)

    async def list_models(self) -> list[DiscoveredModel]:
        """``GET {base}/models`` of each endpoint in turn until one answers (vLLM's entries
        carry ``max_model_len``); the last failure if none does."""
        last: ProviderError | None = None
        for url in self._urls:
            try:
                return await fetch_models(self._client, f"{url}/models", self._headers,
                                          provider_id=self.id)
            except ProviderError as err:
                last = err
        assert last is not None  # there is always at least one URL
        raise last

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        body: dict[str, Any] = {"model": call.upstream_model, "input": call.input,
                                "encoding_format": "float"}
        if call.dimensions is not None:
            body["dimensions"] = call.dimensions
        resp = await self._client.post(f"{self._base()}/embeddings", orjson.dumps(body),
                                       self._json_headers, provider_id=self.id,
                                       timeout_s=call.timeout_s)
        if resp.status >= 400:
            raise classify_status(resp.status, resp.text, resp.headers, provider_id=self.id)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise malformed(self.id, "body is not JSON") from None
        return parse_embeddings(data, self.id, input_count(call.input))

    async def aclose(self) -> None:
        await self._client.aclose()


class VLLMAdapter(OpenAIAdapter):
    """vLLM's OpenAI-compatible server; several endpoints per provider, round-robin."""

    type = "vllm"
