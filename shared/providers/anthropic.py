"""Anthropic messages adapter: system lifted out, max_tokens required, content blocks."""

from __future__ import annotations

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

DEFAULT_MAX_TOKENS = 1024
_STOP = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
         "tool_use": "tool_calls"}
_PASS = ("temperature", "top_p", "top_k", "metadata", "tool_choice")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def to_anthropic(call: ProviderCall, stream: bool) -> dict[str, Any]:
    """OpenAI-shaped messages and parameters → an Anthropic messages request body."""
    system = "\n\n".join(_text(m.get("content")) for m in call.messages
                         if m.get("role") in ("system", "developer"))
    messages = [{"role": "assistant" if m.get("role") == "assistant" else "user",
                 "content": _text(m.get("content"))}
                for m in call.messages if m.get("role") not in ("system", "developer")]
    params = call.parameters
    body: dict[str, Any] = {"model": call.upstream_model, "messages": messages,
                            "max_tokens": params.get("max_tokens") or DEFAULT_MAX_TOKENS}
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for key in _PASS:
        if params.get(key) is not None:
            body[key] = params[key]
    if params.get("tools"):
        body["tools"] = [
            {"name": t["function"]["name"], "description": t["function"].get("description", ""),
             "input_schema": t["function"].get("parameters", {"type": "object"})}
            if "function" in t else t for t in params["tools"]]
    return body


def parse_message(data: Any, provider_id: str) -> Completion:
    try:
        blocks = data["content"]
        text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        tools = [{"id": b["id"], "type": "function",
                  "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}}
                 for b in blocks if b.get("type") == "tool_use"]
        usage = data.get("usage") or {}
        return Completion(content=text, finish_reason=_STOP.get(data.get("stop_reason") or "",
                                                                data.get("stop_reason")),
                          tool_calls=tools or None,
                          usage=Usage(prompt_tokens=int(usage.get("input_tokens") or 0),
                                      completion_tokens=int(usage.get("output_tokens") or 0)),
                          upstream_model=data.get("model"), upstream_id=data.get("id"))
    except (KeyError, TypeError, AttributeError) as exc:
        raise malformed(provider_id, f"unexpected message shape ({exc})") from None


class AnthropicAdapter:
    type = "anthropic"

    def __init__(self, provider_id: str, *, client: HttpClient, base_url: str,
                 api_key: str | None = None, version: str = "2023-06-01") -> None:
        self.id = provider_id
        self._client = client
        self._base = base_url.rstrip("/")
        self._headers = {"anthropic-version": version, "content-type": "application/json"}
        if api_key:
            self._headers["x-api-key"] = api_key

    async def complete(self, call: ProviderCall) -> Completion:
        resp = await self._client.post(f"{self._base}/messages",
                                       orjson.dumps(to_anthropic(call, False)),
                                       self._headers, provider_id=self.id,
                                       timeout_s=call.timeout_s,
                                       model=call.upstream_model)
        if resp.status >= 400:
            raise classify_status(resp.status, resp.text, resp.headers, provider_id=self.id)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise malformed(self.id, "body is not JSON") from None
        return parse_message(data, self.id)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        async with self._client.stream(f"{self._base}/messages",
                                       orjson.dumps(to_anthropic(call, True)),
                                       {**self._headers, "accept": "text/event-stream"},
                                       provider_id=self.id, timeout_s=call.timeout_s,
                                       model=call.upstream_model) as lines:
            async for chunk in self._events(lines):
                yield chunk

    async def _events(self, lines: AsyncIterator[str]) -> AsyncIterator[StreamChunk]:
        usage = Usage()
        stopped = False
        prompt_sent = False  # the prompt's tokens ride on the first text chunk: a client
        # hanging up before message_delta is still charged them
        async for line in lines:
            if not line.startswith("data:"):
                continue
            try:
                data = orjson.loads(line[5:].strip())
                kind = data.get("type")
            except (orjson.JSONDecodeError, AttributeError):
                raise malformed(self.id, "stream event is not a JSON object") from None
            if kind == "message_start":
                u = (data.get("message") or {}).get("usage") or {}
                usage.prompt_tokens = int(u.get("input_tokens") or 0)
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta":
                    yield StreamChunk(delta=str(delta.get("text", "")),
                                      usage=None if prompt_sent else usage.model_copy())
                    prompt_sent = True
            elif kind == "message_delta":
                u = data.get("usage") or {}
                usage.completion_tokens = int(u.get("output_tokens") or 0)
                reason = (data.get("delta") or {}).get("stop_reason") or ""
                yield StreamChunk(finish_reason=_STOP.get(reason, reason or None),
                                  usage=usage.model_copy())
            elif kind == "message_stop":
                stopped = True
                break
            elif kind == "error":
                raise ProviderError(f"upstream {self.id} stream error: "
                                    f"{upstream_text(str(data.get('error')))}"[:500],
                                    error_class="transient", provider_id=self.id)
        if not stopped:
            raise ProviderError(f"upstream {self.id} stream ended before message_stop",
                                error_class="transient", provider_id=self.id)

    async def probe(self) -> ProbeResult:
        return await probe_models(self._client, f"{self._base}/models", self._headers)

    async def list_models(self) -> list[DiscoveredModel]:
        """Anthropic's models list (``GET /v1/models``, first 1000; no context sizes)."""
        return await fetch_models(self._client, f"{self._base}/models?limit=1000",
                                  self._headers, provider_id=self.id)

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        raise ProviderError(f"provider {self.id!r}: Anthropic has no embeddings API",
                            error_class="fatal", status=400, provider_id=self.id)

    async def aclose(self) -> None:
        await self._client.aclose()
