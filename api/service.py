"""The request service: every run — chat, stream, plan — is prepared, charged, dispatched,
settled and observed here, once.

Routes only translate wire formats (native, OpenAI-compatible, and later Anthropic and
async runs) into a prepared input and the service's answer back. The sequence is the
same for every kind of run:

    prepare (directives, policy, route)  →  reserve the budget  →  dispatch (Temporal or
    in-process)  →  settle the budget on what the run really cost  →  observe the run's
    summary (metrics, routing stats)

The run's record (request-log row, rewards) is written inside the orchestration, on the
runtime that ran it; the summary it was built from comes back here, on success in the
outcome and on failure on the error, so metrics and record never disagree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from api.dispatch import Dispatcher
from api.response_cache import CacheAsk, CachedStream, Lookup, ResponseCache
from api.state import AppState
from api.stream_relay import DurableStream, DurableStreams
from shared.contracts import ChatBody, PlanBody, Policy
from shared.errors import TokenHubError
from shared.limits import RequestLimits
from shared.orchestration.chat import ChatInput, ChatOutcome, RequestKind
from shared.orchestration.embeddings import (
    EmbeddingInput,
    EmbeddingsInput,
    EmbeddingsOutcome,
    prepare_embeddings,
    run_embeddings,
)
from shared.orchestration.plan import PlanInput, PlanOutcome
from shared.orchestration.prepare import prepare_chat, prepare_plan
from shared.orchestration.progress import Charge
from shared.orchestration.records import RunSummary
from shared.orchestration.stream import ChatStream, open_chat_stream
from shared.security.apikeys import ApiKeyService, Principal, Reservation


class _Summarised(Protocol):
    @property
    def summary(self) -> RunSummary: ...


Run = TypeVar("Run", bound=_Summarised)


@dataclass(frozen=True)
class Caller:
    """Who asked, as the service needs it."""

    request_id: str
    principal: Principal | None = None
    request_body: str | None = None  # for the request log (TOKENHUB_LOG_BODIES), redacted
    # the wall clock when the request arrived: a run's latency is measured from here
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    fingerprint: str | None = None  # set when the client chose the request id

    @property
    def api_key_id(self) -> str | None:
        return self.principal.key_id if self.principal else None


class Budget:
    """Reserve the estimated cost before the run, charge what it cost after."""

    def __init__(self, keys: ApiKeyService, principal: Principal | None) -> None:
        self._keys, self._principal = keys, principal
        self._res: Reservation | None = None

    async def reserve(self, estimated_usd: float) -> None:
        if self._principal is not None:
            self._res = await self._keys.reserve(self._principal, estimated_usd)

    async def settle(self, actual_usd: float) -> None:
        res, self._res = self._res, None
        if res is not None:
            await self._keys.settle(res, actual_usd)

    def hand_over(self) -> Charge | None:
        """The hold, for the run to settle itself (an async run); this Budget forgets it."""
        res, self._res = self._res, None
        if res is None:
            return None
        return Charge(api_key_id=res.key_id, month=res.month, hold_id=res.id)


class RequestService:
    def __init__(self, state: AppState, dispatcher: Dispatcher, keys: ApiKeyService,
                 streams: DurableStreams | None = None,
                 cache: ResponseCache | None = None) -> None:
        self.state, self.dispatcher, self._keys = state, dispatcher, keys
        self.cache = cache  # the exact response cache (api/response_cache.py)
        s = state.settings
        self.limits = RequestLimits(max_messages=s.max_messages,
                                    max_directive_lines=s.max_directive_lines)
        self.streams = streams  # durable streams on Temporal (None: Temporal disabled)

    # -- prepare: the routing decision, in the gateway, before any runtime ---------------
    def prepare_chat(self, body: ChatBody, caller: Caller, *, kind: RequestKind) -> ChatInput:
        state = self.state
        hint = body.request.model_hint
        return prepare_chat(
            body, request_id=caller.request_id, kind=kind, defaults=state.default_policy,
            ctx=state.routing_context(), rng=state.rng,
            max_attempts=state.settings.max_attempts, retry=state.retry,
            known_model=hint is None or state.known_model(hint),
            request_body=caller.request_body, api_key_id=caller.api_key_id,
            started_at=caller.started_at, fingerprint=caller.fingerprint, limits=self.limits)

    def prepare_plan(self, body: PlanBody, caller: Caller) -> PlanInput:
        state = self.state
        return prepare_plan(
            body, request_id=caller.request_id, defaults=state.default_policy,
            ctx=state.routing_context(), rng=state.rng,
            max_attempts=state.settings.max_attempts, known_model=state.known_model,
            retry=state.plan_retry, request_body=caller.request_body,
            api_key_id=caller.api_key_id, started_at=caller.started_at,
            fingerprint=caller.fingerprint, limits=self.limits)

    def prepare_embeddings(self, caller: Caller, *, input: EmbeddingInput, model: str | None,
                           dimensions: int | None, policy: Policy | None) -> EmbeddingsInput:
        state = self.state
        return prepare_embeddings(
            request_id=caller.request_id, input=input, model=model, dimensions=dimensions,
            policy=policy, defaults=state.default_policy, ctx=state.routing_context(),
            rng=state.rng, max_attempts=state.settings.max_attempts,
            api_key_id=caller.api_key_id, request_body=caller.request_body,
            started_at=caller.started_at)

    # -- run -----------------------------------------------------------------------------
    async def run_chat(self, inp: ChatInput, caller: Caller,
                       cache: CacheAsk | None = None) -> ChatOutcome:
        """Run a chat; when it is cached (``cache``, or the catalog's TTL), a fresh entry
        answers instead: no provider call, no workflow, no budget hold, logged as kind
        ``cache``. A miss runs and its answer is stored."""
        look = await self.cache.lookup(cache, inp) if self.cache is not None else None
        if look is not None and look.answer is not None and self.cache is not None:
            return await self.cache.hit(look.answer, inp)
        estimate = inp.route.candidates[0].estimated_cost_usd
        out = await self._charged(caller, estimate, lambda: self.dispatcher.run_chat(inp))
        if look is not None and self.cache is not None:
            await self.cache.remember(look, out)
            out.cache = "miss"
        return out

    async def run_plan(self, inp: PlanInput, caller: Caller) -> PlanOutcome:
        estimate = inp.primary.candidates[0].estimated_cost_usd * inp.calls
        return await self._charged(caller, estimate, lambda: self.dispatcher.run_plan(inp))

    async def run_embeddings(self, inp: EmbeddingsInput, caller: Caller) -> EmbeddingsOutcome:
        """Always in-process (one short idempotent call: nothing to make durable)."""
        estimate = inp.route.candidates[0].estimated_cost_usd
        return await self._charged(caller, estimate,
                                   lambda: run_embeddings(inp, self.dispatcher.local))

    async def stream_chat(self, inp: ChatInput, caller: Caller, *, include_usage: bool = True,
                          cache: CacheAsk | None = None
                          ) -> ChatStream | DurableStream | CachedStream:
        """Open the stream (failover before the first chunk): on Temporal when it is up
        (api/stream_relay.py), else on the in-process runtime; the budget is settled and
        the run observed when the run ends, however it ends and whoever reads it.
        A cached answer is replayed as a stream; a completed one is stored when cached."""
        look = await self.cache.lookup(cache, inp) if self.cache is not None else None
        if look is not None and look.answer is not None and self.cache is not None:
            return CachedStream(await self.cache.hit(look.answer, inp))
        idem = self.dispatcher.idempotency
        if caller.fingerprint is not None:  # a stream is not replayed: a repeat is a 409
            await idem.claim_stream(request_id=caller.request_id, fp=caller.fingerprint)
        budget = await self._reserve(caller, inp.route.candidates[0].estimated_cost_usd)
        durable = await self._stream_durably(inp, budget, include_usage, caller, look)
        if durable is not None:
            durable.cache = "miss" if look is not None else None
            return durable
        try:
            stream = await open_chat_stream(inp, self.dispatcher.local)
        except BaseException as exc:
            if caller.fingerprint is not None:  # nothing was streamed: a retry may run
                await idem.release(caller.request_id)
            await self._failed(budget, exc)
            raise

        async def finished(summary: RunSummary) -> None:
            if caller.fingerprint is not None:
                await idem.finish_stream(caller.request_id)
            await self._finished(budget, summary)
            if look is not None and self.cache is not None:
                await self.cache.remember_stream(look, stream)

        stream.on_finish.append(finished)
        stream.cache = "miss" if look is not None else None
        stream.tasks = self.state.background  # finishing outlives a client's hang-up
        return stream

    async def _stream_durably(self, inp: ChatInput, budget: Budget, include_usage: bool,
                              caller: Caller, look: Lookup | None) -> DurableStream | None:
        streams = self.streams
        if streams is None:
            return None
        idem = self.dispatcher.idempotency

        async def settle(result: asyncio.Future[ChatOutcome]) -> None:
            try:
                out = await result
            except BaseException as exc:  # noqa: BLE001 - a failed run is settled on its summary
                await self._failed(budget, exc)
                return
            finally:
                if caller.fingerprint is not None:
                    await idem.finish_stream(caller.request_id)
            await self._finished(budget, out.summary)
            # the workflow's answer is the text before output shaping: kept only without it
            if look is not None and self.cache is not None and out.summary.status == "ok" \
                    and inp.output_format is None:
                await self.cache.remember(look, out)

        try:
            return await streams.open(inp, include_usage=include_usage, on_result=settle)
        except BaseException as exc:
            if caller.fingerprint is not None:  # nothing was streamed: a retry may run
                await idem.release(caller.request_id)
            await self._failed(budget, exc)
            raise

    async def submit(self, caller: Caller, estimate_usd: float,
                     start: Callable[[Charge | None], Awaitable[asyncio.Future[Any] | None]],
                     *, tasks: set[asyncio.Task[None]]) -> bool:
        """An async run (api/runs.py): reserve its budget and start it with the hold
        (``start`` gives the run's future result, or None when the id already had a run,
        charged by the call that started it). The run settles its hold itself when it
        ends (workflows/progress.py), so a gateway that stops meanwhile loses nothing;
        this process only observes the run's summary (metrics, routing stats), by a task
        kept in ``tasks``. Whether this call started the run."""
        charge = (await self._reserve(caller, estimate_usd)).hand_over()
        try:
            result = await start(charge)
        except BaseException:
            await self._release(charge)  # the run never started: nothing to charge
            raise
        if result is None:  # the id's run holds (and settles) its own
            await self._release(charge)
            return False

        async def observe() -> None:
            try:
                out = await result
            except asyncio.CancelledError:  # the gateway stops: the run settles itself
                result.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - a failed run: observe its summary
                out = exc
            summary = getattr(out, "summary", None)
            if isinstance(summary, RunSummary) and not summary.replayed:
                self.state.observe_run(summary)

        task = asyncio.get_running_loop().create_task(observe())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return True

    async def _release(self, charge: Charge | None) -> None:
        if charge is not None:
            await self._keys.settle(Reservation(charge.api_key_id, charge.month, 0.0,
                                                id=charge.hold_id), 0.0)

    # -- bookkeeping -----------------------------------------------------------------------
    async def _charged(self, caller: Caller, estimate_usd: float,
                       run: Callable[[], Awaitable[Run]]) -> Run:
        budget = await self._reserve(caller, estimate_usd)
        try:
            out = await run()
        except BaseException as exc:
            await self._failed(budget, exc)
            raise
        await self._finished(budget, out.summary)
        return out

    async def _reserve(self, caller: Caller, estimate_usd: float) -> Budget:
        budget = Budget(self._keys, caller.principal)
        await budget.reserve(estimate_usd)
        return budget

    async def _finished(self, budget: Budget, summary: RunSummary) -> None:
        if summary.replayed:  # the first run was charged and observed
            await budget.settle(0.0)
            return
        await budget.settle(summary.cost_usd)
        self.state.observe_run(summary)

    async def _failed(self, budget: Budget, exc: BaseException) -> None:
        """A failed run is charged for the calls the providers billed, observed, and its
        error response names the executor and the model that really ran."""
        summary = exc.summary if isinstance(exc, TokenHubError) else None
        if not isinstance(exc, TokenHubError) or not isinstance(summary, RunSummary):
            await budget.settle(0.0)
            return
        await self._finished(budget, summary)
        exc.extra_headers["X-TokenHub-Executor"] = summary.executor
        if summary.model and summary.provider:
            exc.extra_headers.setdefault("X-TokenHub-Model", summary.model)
            exc.extra_headers.setdefault("X-TokenHub-Provider", summary.provider)
