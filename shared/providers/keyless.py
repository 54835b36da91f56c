"""The adapter standing in for a vault-backed provider whose key this process cannot get.

It never calls upstream: every call fails at once as a classified ``fatal`` provider
error whose message names the fix, so the run fails over without a wasted request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from shared.contracts import Completion, StreamChunk
from shared.errors import ProviderError
from shared.providers.base import (
    DiscoveredModel,
    EmbeddingCall,
    Embeddings,
    ProbeResult,
    ProviderCall,
)


class KeylessAdapter:
    def __init__(self, provider_id: str, provider_type: str, reason: str) -> None:
        self.id = provider_id
        self.type = provider_type
        self.reason = reason

    def _error(self) -> ProviderError:
        return ProviderError(f"provider {self.id!r}: {self.reason}", error_class="fatal",
                             provider_id=self.id)

    async def complete(self, call: ProviderCall) -> Completion:
        raise self._error()

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        raise self._error()
        yield  # pragma: no cover - makes this an async generator

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        raise self._error()

    async def list_models(self) -> list[DiscoveredModel]:
        raise self._error()

    async def probe(self) -> ProbeResult:
        return ProbeResult(ok=False, latency_ms=0.0, detail=self.reason)

    async def aclose(self) -> None:
        return None
