"""HTTP plumbing shared by the adapters: the client, error classification, Retry-After.

Transport: httpx's API over aiohttp's connection pool (``httpx-aiohttp``). Plain
httpx's pool degrades badly under concurrency (httpx issue 3215); see
``bench/results/httpx-pool.md`` for the figures measured here. One client per
provider, shared by every request; never retries (``retries=0``): retries belong
to the Temporal RetryPolicy or the local loop built from the same RetrySpec.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx
from httpx_aiohttp import AiohttpTransport

from shared.errors import ProviderError
from shared.providers.base import ProbeResult

_OVERFLOW_MARKERS = (
    "context_length_exceeded", "maximum context length", "context length",
    "prompt is too long", "too many tokens", "context window",
)


def build_client(*, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int) -> httpx.AsyncClient:
    """One pooled client for one provider (the pool lives as long as the provider)."""
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections, keepalive_expiry=30)
    timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s, pool=connect_timeout_s)
    return httpx.AsyncClient(transport=AiohttpTransport(limits=limits, trust_env=False),
                             timeout=timeout, limits=limits, trust_env=False)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``Retry-After`` seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def classify_status(status: int, body: str, headers: Mapping[str, str], *,
                    provider_id: str) -> ProviderError:
    """Map an HTTP error response to an error class (SPEC §4)."""
    text = body[:500]
    lowered = body.lower()
    msg = f"upstream {provider_id} returned HTTP {status}: {text}"
    if status == 413 or (status in (400, 422) and any(m in lowered for m in _OVERFLOW_MARKERS)):
        return ProviderError(msg, error_class="context_overflow", status=status,
                             provider_id=provider_id)
    if status == 429:
        return ProviderError(msg, error_class="rate_limited", status=status,
                             retry_after=parse_retry_after(headers), provider_id=provider_id)
    if status >= 500 or status in (408, 409, 425):
        return ProviderError(msg, error_class="transient", status=status,
                             retry_after=parse_retry_after(headers), provider_id=provider_id)
    return ProviderError(msg, error_class="fatal", status=status, provider_id=provider_id)


def classify_exception(exc: Exception, *, provider_id: str) -> ProviderError:
    """Timeouts, connection errors and broken streams are transient."""
    kind = type(exc).__name__
    return ProviderError(f"upstream {provider_id}: {kind}: {exc}"[:500],
                         error_class="transient", provider_id=provider_id)


def malformed(provider_id: str, what: str) -> ProviderError:
    return ProviderError(f"upstream {provider_id} sent a malformed response: {what}"[:500],
                         error_class="transient", status=200, provider_id=provider_id)


@asynccontextmanager
async def streamed(client: httpx.AsyncClient, request: httpx.Request, *,
                   provider_id: str) -> AsyncIterator[httpx.Response]:
    """Send a streaming request; HTTP errors and transport failures (before or during the
    stream) come out classified; the response is always closed."""
    try:
        resp = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise classify_exception(exc, provider_id=provider_id) from None
    try:
        if resp.status_code >= 400:
            body = (await resp.aread()).decode("utf-8", "replace")
            raise classify_status(resp.status_code, body, resp.headers, provider_id=provider_id)
        yield resp
    except httpx.HTTPError as exc:
        raise classify_exception(exc, provider_id=provider_id) from None
    finally:
        await resp.aclose()


async def probe_models(client: httpx.AsyncClient, url: str,
                       headers: Mapping[str, str]) -> ProbeResult:
    """GET the provider's model list: reachable, how fast, which models."""
    started = time.perf_counter()
    try:
        resp = await client.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        return ProbeResult(ok=False, latency_ms=(time.perf_counter() - started) * 1000,
                           detail=type(exc).__name__)
    ms = (time.perf_counter() - started) * 1000
    if resp.status_code >= 400:
        return ProbeResult(ok=False, latency_ms=ms, detail=f"HTTP {resp.status_code}")
    try:
        ids = [str(m["id"]) for m in resp.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        ids = []
    return ProbeResult(ok=True, latency_ms=ms, models=ids)
