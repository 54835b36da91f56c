"""HTTP plumbing shared by the adapters: the client, error classification, Retry-After.

The adapters call aiohttp directly. The stack's HTTP client is httpx, and the first
version used httpx's API over aiohttp's pool (``httpx-aiohttp``: plain httpx's pool
degrades badly under concurrency, bench/results/httpx-pool.md). Profiling the gateway
then showed httpx's client layer (request building, cookies, URL parsing, response
wrapping) at about a fifth of its CPU per request; measured per upstream call
(``python -m bench.client_cost``): httpx over the aiohttp transport ~270 µs of CPU,
aiohttp alone ~70 µs. So the hot path keeps aiohttp's pool and drops the layer above.

One client per provider, shared by every request, with its own connection pool; it
never retries: retries belong to the Temporal RetryPolicy or the local loop built from
the same RetrySpec. Transport failures come out as classified ``ProviderError``s.

One model may hold at most a share of the provider's pool (``model_share`` of
``max_connections``, at least one; TOKENHUB_MODEL_CONNECTION_SHARE): a semaphore per
upstream model in front of the one pool. Without it one slow model filled the pool and
a request to another model of the same provider waited behind it (7.6 s measured). A
connector per model would isolate them as well, but multiply the connections the
provider sees (its own limits count per client) and the idle keep-alive sockets; the
semaphore keeps one pool and one provider-wide bound. Its cost is one uncontended
acquire and release per call (``bench.client_cost``: within the noise).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import orjson

from shared.errors import ProviderError
from shared.providers.base import DiscoveredModel, ProbeResult
from shared.security.redact import redact

_OVERFLOW_MARKERS = (
    "context_length_exceeded", "maximum context length", "context length",
    "prompt is too long", "too many tokens", "context window",
)
_TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
_MAX_LINE = 1 << 20  # an SSE line (a large tool-call chunk) may be long


@dataclass(frozen=True)
class HttpResponse:
    status: int
    content: bytes
    headers: Mapping[str, str]

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class HttpClient:
    """A pooled HTTP/1.1 client for one provider (the pool lives as long as the provider).

    The aiohttp session is created on first use, inside the event loop that uses it.
    """

    def __init__(self, *, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int, keepalive_s: float = 30,
                 model_share: float = 1.0) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.model_limit = max(1, int(max_connections * model_share))
        self._slots: dict[str, asyncio.Semaphore] = {}  # per upstream model
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._closed = False

    def session(self, provider_id: str = "") -> aiohttp.ClientSession:
        if self._closed:  # e.g. a retry still holding a provider replaced meanwhile
            raise ProviderError(f"upstream {provider_id}: client closed (provider replaced)",
                                error_class="transient", provider_id=provider_id)
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections,
                                             keepalive_timeout=self._keepalive_s)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  read_bufsize=_MAX_LINE // 2,
                                                  timeout=self.timeout(None))
        return self._session

    def timeout(self, timeout_s: float | None) -> aiohttp.ClientTimeout:
        """Per call: ``timeout_s`` bounds each read and the wait for a connection;
        the TCP connect is bounded by the client's connect timeout as well."""
        t = self._timeouts.get(timeout_s)
        if t is None:
            read = timeout_s or self.read_timeout_s
            connect = min(read, self.connect_timeout_s)
            t = aiohttp.ClientTimeout(total=None, sock_read=read, sock_connect=connect,
                                      connect=max(read, connect))
            if len(self._timeouts) < 64:  # latency budgets give many values: cache a few
                self._timeouts[timeout_s] = t
        return t

    async def _slot(self, model: str, provider_id: str,
                    limits: aiohttp.ClientTimeout) -> asyncio.Semaphore | None:
        """Take one of ``model``'s connections (None: no per-model bound). Waiting is
        bounded like the wait for a pooled connection."""
        if self.model_limit >= self.max_connections:
            return None
        slot = self._slots.get(model)
        if slot is None:
            slot = self._slots[model] = asyncio.Semaphore(self.model_limit)
        if not slot.locked():
            await slot.acquire()  # free: returns at once
            return slot
        try:
            async with asyncio.timeout(limits.connect):
                await slot.acquire()
        except TimeoutError:
            raise ProviderError(f"upstream {provider_id}: model {model!r} has all its "
                                f"{self.model_limit} connections busy",
                                error_class="transient", provider_id=provider_id) from None
        return slot

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
                   provider_id: str, timeout_s: float | None = None,
                   model: str = "") -> HttpResponse:
        """POST and read the whole answer; transport failures come out classified.
        ``model``: the upstream model, whose share of the pool the call takes."""
        timeout = self.timeout(timeout_s)
        slot = await self._slot(model, provider_id, timeout)
        try:
            async with self.session(provider_id).post(url, data=body, headers=headers,
                                                      timeout=timeout,
                                                      allow_redirects=False) as resp:
                return HttpResponse(resp.status, await resp.read(), resp.headers)
        except _TRANSPORT_ERRORS as exc:
            raise classify_exception(exc, provider_id=provider_id) from None
        finally:
            if slot is not None:
                slot.release()

    @asynccontextmanager
    async def stream(self, url: str, body: bytes, headers: Mapping[str, str], *,
                     provider_id: str, timeout_s: float | None = None,
                     model: str = "") -> AsyncIterator[AsyncIterator[str]]:
        """POST a streaming request and yield its lines (decoded, without line endings).
        HTTP errors and transport failures (before or during the stream) come out
        classified; the response (and the model's connection slot) is always released."""
        timeout = self.timeout(timeout_s)
        slot = await self._slot(model, provider_id, timeout)
        try:
            async with self.session(provider_id).post(url, data=body, headers=headers,
                                                      timeout=timeout,
                                                      allow_redirects=False) as resp:
                if resp.status >= 400:
                    text = (await resp.read()).decode("utf-8", "replace")
                    raise classify_status(resp.status, text, resp.headers,
                                          provider_id=provider_id)
                yield _lines(resp, provider_id)
        except _TRANSPORT_ERRORS as exc:
            raise classify_exception(exc, provider_id=provider_id) from None
        finally:
            if slot is not None:
                slot.release()

    async def get(self, url: str, headers: Mapping[str, str], *,
                  timeout_s: float) -> HttpResponse:
        async with self.session().get(url, headers=headers, timeout=self.timeout(timeout_s),
                                      allow_redirects=False) as resp:
            return HttpResponse(resp.status, await resp.read(), resp.headers)

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _lines(resp: aiohttp.ClientResponse, provider_id: str) -> AsyncIterator[str]:
    it = aiter(resp.content)
    while True:
        try:
            raw = await anext(it)
        except StopAsyncIteration:
            return
        except (ValueError, aiohttp.http_exceptions.LineTooLong) as exc:  # over the limit
            raise malformed(provider_id, f"stream line too long ({type(exc).__name__})"
                            ) from None
        yield raw.decode("utf-8", "replace").rstrip("\r\n")


def build_client(*, connect_timeout_s: float, read_timeout_s: float,
                 max_connections: int, model_share: float = 1.0) -> HttpClient:
    """One pooled client for one provider; each model may hold ``model_share`` of it."""
    return HttpClient(connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s,
                      max_connections=max_connections, model_share=model_share)


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


def upstream_text(text: str, limit: int = 500) -> str:
    """Text that came from an upstream (error body, echoed headers, exception text),
    made fit for a ProviderError message: secrets masked (an upstream may repeat the
    key it was sent), then cut. Every ProviderError built from upstream text uses it."""
    return redact(text[:limit * 2])[:limit]


def classify_status(status: int, body: str, headers: Mapping[str, str], *,
                    provider_id: str) -> ProviderError:
    """Map an HTTP error response to an error class (SPEC §4)."""
    lowered = body.lower()
    msg = f"upstream {provider_id} returned HTTP {status}: {upstream_text(body)}"
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
    return ProviderError(f"upstream {provider_id}: {kind}: {upstream_text(str(exc))}"[:500],
                         error_class="transient", provider_id=provider_id)


def malformed(provider_id: str, what: str) -> ProviderError:
    return ProviderError(f"upstream {provider_id} sent a malformed response: "
                         f"{upstream_text(what)}"[:500],
                         error_class="transient", status=200, provider_id=provider_id)


async def probe_models(client: HttpClient, url: str,
                       headers: Mapping[str, str]) -> ProbeResult:
    """GET the provider's model list: reachable, how fast, which models."""
    started = time.perf_counter()
    try:
        resp = await client.get(url, headers, timeout_s=10)
    except (*_TRANSPORT_ERRORS, ProviderError) as exc:
        return ProbeResult(ok=False, latency_ms=(time.perf_counter() - started) * 1000,
                           detail=type(exc).__name__)
    ms = (time.perf_counter() - started) * 1000
    if resp.status >= 400:
        return ProbeResult(ok=False, latency_ms=ms, detail=f"HTTP {resp.status}")
    try:
        ids = [str(m["id"]) for m in orjson.loads(resp.content).get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        ids = []
    return ProbeResult(ok=True, latency_ms=ms, models=ids)


_CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


def _context(entry: dict[str, object]) -> int | None:
    for key in _CONTEXT_KEYS:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def parse_model_list(content: bytes, provider_id: str) -> list[DiscoveredModel]:
    """``{"data": [{"id": ..., "max_model_len"?: ...}, ...]}`` (OpenAI, vLLM, Anthropic)."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise malformed(provider_id, "model list is not JSON") from None
    entries = data.get("data") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise malformed(provider_id, "model list has no \"data\" array")
    out = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("id"), str) or not e["id"]:
            raise malformed(provider_id, "model list entry without an \"id\"")
        owner = e.get("owned_by")
        out.append(DiscoveredModel(id=e["id"], max_context_tokens=_context(e),
                                   owned_by=owner if isinstance(owner, str) else None))
    return out


async def fetch_models(client: HttpClient, url: str, headers: Mapping[str, str], *,
                       provider_id: str, timeout_s: float = 10) -> list[DiscoveredModel]:
    """GET a model list; failures come out as classified ProviderErrors (HTTP status kept)."""
    try:
        resp = await client.get(url, headers, timeout_s=timeout_s)
    except _TRANSPORT_ERRORS as exc:
        raise classify_exception(exc, provider_id=provider_id) from None
    if resp.status >= 400:
        raise classify_status(resp.status, resp.text, resp.headers, provider_id=provider_id)
    return parse_model_list(resp.content, provider_id)
