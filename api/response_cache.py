"""The exact response cache as the request service uses it: which requests are cached and
for how long, their key, the lookup, the store, and a hit's bookkeeping.

A request is cached when it asks (``"cache": {"ttl_s": N}`` on ``/v1/chat``, the
``X-TokenHub-Cache-TTL`` header on ``/v1/chat/completions``) or when its model or alias
has ``cache_ttl_s`` in the catalog (the request's TTL wins). An entry is served to a
request whose TTL it is younger than. A hit runs nothing: no provider call, no workflow,
no budget hold; it is logged (kind ``cache``, executor ``cache``, $0) from a run summary
like every run. The store failing (Redis down, say) never fails a request: the lookup
counts as ``error`` and the request runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from api.state import AppState
from shared.cache.keys import ANONYMOUS, GLOBAL, cache_key
from shared.cache.store import CachedAnswer, CacheStore, Clock, utc_now
from shared.contracts import NormalizedResponse, ResponseMessage
from shared.errors import BadRequest
from shared.orchestration.chat import ChatInput, ChatOutcome
from shared.orchestration.records import RunSummary, record_batch
from shared.orchestration.stream import ChatStream

log = logging.getLogger("tokenhub.cache")


@dataclass(frozen=True)
class CacheAsk:
    """What a route knows of a request's caching: the TTL it asked for (validated by the
    route, field named) and the model or alias it named (``None``: ``auto``)."""

    ttl_s: int | None = None
    model_hint: str | None = None


@dataclass(frozen=True)
class CachedStream:
    """A streamed request answered from the cache: replayed as a stream (api/streaming.py)."""

    outcome: ChatOutcome


@dataclass(frozen=True)
class Lookup:
    key: str
    ttl_s: int
    answer: CachedAnswer | None


def check_ttl(value: int | None, max_ttl_s: int, field: str) -> int | None:
    """A requested TTL: 1 … TOKENHUB_CACHE_MAX_TTL_S seconds, else a 400 naming ``field``."""
    if value is not None and not 0 < value <= max_ttl_s:
        raise BadRequest(f"{field}: the cache TTL must be 1 to {max_ttl_s} seconds "
                         f"(TOKENHUB_CACHE_MAX_TTL_S), not {value}")
    return value


class ResponseCache:
    def __init__(self, state: AppState, store: CacheStore, *, clock: Clock = utc_now) -> None:
        self.state, self.store, self._clock = state, store, clock
        s = state.settings
        self.max_ttl_s, self.global_scope = s.cache_max_ttl_s, s.cache_scope == "global"

    def ttl(self, ask: CacheAsk, inp: ChatInput) -> int | None:
        """The request's TTL, else its alias's, else its (first) model's catalog TTL."""
        if ask.ttl_s is not None:
            return ask.ttl_s
        ttls = self.state.cache_ttls
        ttl = ttls.get(ask.model_hint) if ask.model_hint is not None else None
        if ttl is None:
            ttl = ttls.get(inp.route.candidates[0].model.id)
        return min(ttl, self.max_ttl_s) if ttl is not None else None

    def key(self, ask: CacheAsk, inp: ChatInput) -> str:
        first = inp.route.candidates[0]
        models = [first.model.id] if ask.model_hint is not None and \
            first.reason == "model_hint" else [c.model.id for c in inp.route.candidates]
        scope = GLOBAL if self.global_scope else (inp.api_key_id or ANONYMOUS)
        fmt = inp.output_format.model_dump(mode="json") if inp.output_format else None
        return cache_key(scope=scope, models=models, messages=inp.messages,
                         parameters=inp.parameters, output_format=fmt)

    async def lookup(self, ask: CacheAsk | None, inp: ChatInput) -> Lookup | None:
        """None when the request is not cached; else its key, TTL and the fresh entry."""
        ttl = self.ttl(ask, inp) if ask is not None else None
        if ttl is None or ask is None:
            return None
        key = self.key(ask, inp)
        metrics = self.state.metrics
        try:
            answer = await self.store.get(key)
        except Exception:
            log.warning("response cache lookup failed; running the request", exc_info=True)
            metrics.cache.labels("error").inc()
            return Lookup(key, ttl, None)
        if answer is not None and not answer.fresh(self._clock(), ttl):
            answer = None
        metrics.cache.labels("hit" if answer is not None else "miss").inc()
        return Lookup(key, ttl, answer)

    async def remember(self, look: Lookup, outcome: ChatOutcome) -> None:
        """Store a successful answer (the caller never passes an error or an answer that
        failed output validation: those raise before there is an outcome)."""
        await self.remember_answer(look, model=outcome.negotiated_model,
                                   provider=outcome.provider, reason=outcome.routing_reason,
                                   response=outcome.response)

    async def remember_stream(self, look: Lookup, stream: ChatStream) -> None:
        """Store a streamed answer that completed and passed validation (text only: tool
        calls arrive in fragments and are not kept)."""
        answer = stream.answer()
        if answer is None or stream.summary is None or stream.summary.status != "ok":
            return
        text, finish = answer
        response = NormalizedResponse(
            message=ResponseMessage(content=text), finish_reason=finish,
            usage=stream.charged_usage(), cost_usd=stream.summary.cost_usd)
        await self.remember_answer(look, model=stream.model.id,
                                   provider=stream.model.provider_id,
                                   reason=stream.inp.route.reason, response=response)

    async def remember_answer(self, look: Lookup, *, model: str, provider: str, reason: str,
                              response: NormalizedResponse) -> None:
        now = self._clock()
        answer = CachedAnswer(
            model=model, provider=provider, routing_reason=reason, response=response,
            created_at=now, expires_at=now + timedelta(seconds=look.ttl_s))
        try:
            await self.store.put(look.key, answer)
        except Exception:
            log.warning("response cache store failed", exc_info=True)
            self.state.metrics.cache_stores.labels("error").inc()
            return
        self.state.metrics.cache_stores.labels("ok").inc()

    async def hit(self, answer: CachedAnswer, inp: ChatInput) -> ChatOutcome:
        """The outcome of a hit, logged (kind ``cache``, $0) and observed like any run."""
        now = self._clock()
        started = inp.started_at or now
        summary = RunSummary(
            request_id=inp.request_id, kind="cache", mode=inp.policy.mode, executor="cache",
            model=answer.model, provider=answer.provider,
            latency_ms=max((now - started).total_seconds() * 1000, 0.0),
            api_key_id=inp.api_key_id, size_bucket=inp.size_bucket,
            budget_ms=inp.policy.max_latency_ms)
        batch = record_batch(summary, now, request_body=inp.request_body)
        await self.state.log_writer.submit_paced(batch.record, batch.rewards)
        self.state.observe_run(summary)
        response = answer.response.model_copy(update={"cost_usd": 0.0})
        return ChatOutcome(
            request_id=inp.request_id, negotiated_model=answer.model, provider=answer.provider,
            estimated_cost_usd=0.0, routing_reason=f"cache hit ({answer.routing_reason})",
            response=response, summary=summary, cache="hit")
