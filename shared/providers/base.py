"""The provider adapter port.

An adapter makes exactly one attempt per call and never retries: retries belong
to the Temporal activity RetryPolicy (workflow path) or to the local effects'
loop built from the same retry spec (local path). Failures are raised as
:class:`shared.errors.ProviderError` with an ``error_class``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from pydantic import BaseModel, Field

from shared.contracts import Completion, StreamChunk, Usage


class ProviderCall(BaseModel):
    """One call to one upstream model."""

    upstream_model: str
    messages: list[dict[str, Any]] = Field(min_length=1)  # OpenAI-shaped message dicts
    parameters: dict[str, Any] = Field(default_factory=dict)  # forwarded as-is
    request_id: str | None = None
    timeout_s: float | None = None


class EmbeddingCall(BaseModel):
    """One embeddings call to one upstream model (vectors come back as floats)."""

    upstream_model: str
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = None
    request_id: str | None = None
    timeout_s: float | None = None


class Embeddings(BaseModel):
    """A provider's embeddings, in input order."""

    vectors: list[list[float]]
    usage: Usage = Field(default_factory=Usage)
    upstream_model: str | None = None


class DiscoveredModel(BaseModel):
    """One model a provider lists (``GET /v1/models``)."""

    id: str  # the provider's name for it (``upstream_model``)
    max_context_tokens: int | None = None  # when the server reports one (vLLM max_model_len)
    owned_by: str | None = None


class ProbeResult(BaseModel):
    ok: bool
    latency_ms: float
    detail: str | None = None
    models: list[str] = Field(default_factory=list)


class ProviderAdapter(Protocol):
    """What the orchestration needs from a provider."""

    id: str
    type: str

    async def complete(self, call: ProviderCall) -> Completion:
        """One non-streaming attempt; raise ProviderError when it fails."""
        ...

    def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        """One streaming attempt; the iterator raises ProviderError when it fails."""
        ...

    async def embed(self, call: EmbeddingCall) -> Embeddings:
        """One embeddings attempt; raise ProviderError when it fails (``fatal`` where the
        provider has no embeddings API)."""
        ...

    async def probe(self) -> ProbeResult:
        """A cheap health check (e.g. GET /models)."""
        ...

    async def list_models(self) -> list[DiscoveredModel]:
        """The provider's model list; raise ProviderError (with the HTTP status, if any)
        when it cannot be read or is not a model list."""
        ...

    async def aclose(self) -> None:
        """Release the adapter's HTTP client."""
        ...
