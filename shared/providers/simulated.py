"""The built-in SIMULATED provider: no network, fake answers, for a keyless first run."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from shared.contracts import Completion, StreamChunk, Usage
from shared.providers.base import (
    DiscoveredModel,
    EmbeddingCall,
    Embeddings,
    ProbeResult,
    ProviderCall,
)


def _last_user_text(call: ProviderCall) -> str:
    for m in reversed(call.messages):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else str(c)
    return ""


class SimulatedAdapter:
    """Answers ``[simulated <model>] …`` deterministically from the last user message."""

    type = "simulated"

    def __init__(self, provider_id: str = "simulated", *, delay_s: float = 0.02) -> None:
        self.id = provider_id
        self._delay = delay_s

    def _answer(self, call: ProviderCall) -> tuple[str, Usage]:
        prompt = _last_user_text(call)
        text = (f"[simulated {call.upstream_model}] This is a simulated answer (no provider "
                f"configured). You said: {prompt[:200]}")
        chars = sum(len(str(m.get("content") or "")) for m in call.messages)
        usage = Usage(prompt_tokens=max(1, math.ceil(chars / 4)),
                      completion_tokens=max(1, math.ceil(len(text) / 4)))
        return text, usage

    async def complete(self, call: ProviderCall) -> Completion:
        await asyncio.sleep(self._delay)
        text, usage = self._answer(call)
        return Completion(content=text, finish_reason="stop", usage=usage,
                          upstream_model=call.upstream_model)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        text, usage = self._answer(call)
        words = text.split(" ")
        step = max(1, len(words) // 5)
        for i in range(0, len(words), step):
            await asyncio.sleep(self._delay / 5)
            piece = " ".join(words[i:i + step])
            yield StreamChunk(delta=piece if i == 0 else " " + piece)
        yield StreamChunk(finish_reason="stop", usage=usage)

    async def probe(self) -> ProbeResult:
        started = time.perf_counter()
        return ProbeResult(ok=True, latency_ms=(time.perf_counter() - started) * 1000,
                           detail="simulated")

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        """Deterministic unit vectors from a hash of each input (8 dimensions by default)."""
        await asyncio.sleep(self._delay)
        inputs: list[Any] = [call.input] if isinstance(call.input, str) or (
            call.input and isinstance(call.input[0], int)) else list(call.input)
        dims = call.dimensions or 8
        vectors, tokens = [], 0
        for item in inputs:
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += max(1, math.ceil(len(text) / 4))
            digest = hashlib.sha256(text.encode()).digest()
            raw = [digest[i % len(digest)] - 127.5 for i in range(dims)]
            norm = math.sqrt(sum(x * x for x in raw)) or 1.0
            vectors.append([x / norm for x in raw])
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=tokens),
                          upstream_model=call.upstream_model)

    async def list_models(self) -> list[DiscoveredModel]:
        return []

    async def aclose(self) -> None:
        return None
