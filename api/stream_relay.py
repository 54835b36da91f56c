"""Durable streams in the gateway: start a stream run on Temporal, relay its event log to
the client, resume it from any gateway, cancel it.

The relay reads events in log order (offset = SSE event id) from two sources and merges
them, dropping what it already passed on:

- the **inbox** (``shared/orchestration/handoff.py``): deltas handed over in-process by
  the stream activity when it runs on this gateway's own task queue — no extra hop;
- a **subscription** to the run's Workflow Stream (``WorkflowStreamClient.subscribe``),
  started when no call streams into the inbox (relay mode ``subscribe``, a call moved to
  the shared workers, the run's last events, a resume): batched, ~one Temporal round trip
  behind.

A run's events end with one ``end`` event (usage, the model that finished, or the error).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.service import RPCError, RPCStatusCode

from api.circuit import CircuitBreaker
from api.dispatch import chat_tags
from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from engine import attributes
from engine.names import CHAT_WORKFLOW, STREAM_TOPIC
from engine.streams import log_length
from shared.errors import NotFound, RangeNotSatisfiable
from shared.orchestration.chat import ChatInput, ChatOutcome
from shared.orchestration.handoff import ATTEMPT_CHANGED, Handoff, Inbox, Item
from shared.orchestration.streamlog import StreamEvent, StreamOptions
from shared.security.apikeys import Principal

if TYPE_CHECKING:
    from api.embedded import RelayWorker

log = logging.getLogger("tokenhub.streams")

CLOSED = -2  # the run closed (its result is in)
FOLLOW_END = -3  # the subscription ended
# no call streaming into the inbox for this long: read the Workflow Stream instead
INBOX_GRACE_S = 0.5
POLL_COOLDOWN = timedelta(milliseconds=20)
_CLOSED_STATES = {WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED,
                  WorkflowExecutionStatus.CANCELED, WorkflowExecutionStatus.TERMINATED,
                  WorkflowExecutionStatus.TIMED_OUT}


class StreamBroken(Exception):
    """The run's stream ended without its end event (terminated, or history lost)."""


class Relay:
    """The run's events in log order from ``from_offset``: :meth:`next` until ``end``."""

    def __init__(self, client: Client, request_id: str, *, inbox: Inbox | None,
                 from_offset: int, result: asyncio.Future[Any]) -> None:
        self._client, self._rid, self._inbox = client, request_id, inbox
        self._q: asyncio.Queue[Item] = inbox.queue if inbox is not None else asyncio.Queue()
        self.next_offset = from_offset
        self._held: dict[int, StreamEvent] = {}
        self._follower: asyncio.Task[None] | None = None
        self._closed = False
        q = self._q
        result.add_done_callback(lambda _: q.put_nowait((CLOSED, None)))

    async def next(self) -> tuple[int, StreamEvent]:
        while True:
            ev = self._held.pop(self.next_offset, None)
            if ev is not None:
                self.next_offset += 1
                return self.next_offset - 1, ev
            inbox_live = self._inbox is not None and self._inbox.active > 0
            wait: float | None = None
            if self._follower is None and not inbox_live:
                if self._inbox is None or self._closed:
                    self._follow()
                    continue
                wait = INBOX_GRACE_S
            try:
                offset, event = await asyncio.wait_for(self._q.get(), wait)
            except TimeoutError:
                self._follow()
                continue
            if offset == ATTEMPT_CHANGED:
                if self._inbox is not None and self._inbox.active > 0:
                    self._unfollow()  # a call streams into the inbox again
                elif self._follower is None:
                    # the call ended (its deltas all came through the inbox): what comes
                    # next — the end event, or a continuation elsewhere — is read from the
                    # stream at once, without waiting for the run's result
                    self._follow()
            elif offset == CLOSED:
                self._closed = True
            elif offset == FOLLOW_END:
                self._follower = None
                if self._closed and self.next_offset not in self._held:
                    raise StreamBroken(f"the stream of {self._rid} ended without its end")
                await asyncio.sleep(0.1)  # a failed poll: subscribe again
            elif event is not None and offset >= self.next_offset:
                self._held[offset] = event

    def _follow(self) -> None:
        self._follower = asyncio.create_task(self._subscribe(self.next_offset))

    def _unfollow(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            self._follower = None

    async def _subscribe(self, from_offset: int) -> None:
        q = self._q
        try:
            sub = WorkflowStreamClient.create(self._client, self._rid)
            async for item in sub.subscribe([STREAM_TOPIC], from_offset=from_offset,
                                            result_type=StreamEvent,
                                            poll_cooldown=POLL_COOLDOWN):
                q.put_nowait((item.offset, item.data))
                if item.data.kind == "end":
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failed poll: the relay retries
            log.info("stream subscription of %s failed: %s", self._rid, exc)
        q.put_nowait((FOLLOW_END, None))

    def aclose(self) -> None:
        self._unfollow()


class DurableStream:
    """A stream run as the gateway relays it: :meth:`events` from the first one on."""

    executor = "temporal"

    def __init__(self, streams: DurableStreams, handle: WorkflowHandle[Any, ChatOutcome],
                 relay: Relay, *, request_id: str, include_usage: bool,
                 inbox: Inbox | None, result: asyncio.Future[ChatOutcome]) -> None:
        self._streams, self.handle, self.relay = streams, handle, relay
        self.request_id, self.include_usage = request_id, include_usage
        self._inbox = inbox
        self.result = result
        self.first: tuple[int, StreamEvent] | None = None
        self.finished = False
        self.cancel_on_disconnect = False
        self.cache: str | None = None  # "miss" when the response cache applies

    async def open(self) -> None:
        """Wait for the first event; a run that fails before it raises its error (a 502
        before any byte is sent, as on the local path)."""
        nxt: asyncio.Future[Any] = asyncio.ensure_future(self.relay.next())
        result: asyncio.Future[Any] = self.result
        done, _ = await asyncio.wait({nxt, result}, return_when=asyncio.FIRST_COMPLETED)
        failed = None if nxt in done else self.result.exception()
        if failed is not None:
            nxt.cancel()
            self.aclose()
            raise failed
        try:
            first = await nxt
        except BaseException:
            self.aclose()
            raise
        if first[1].kind == "end" and first[1].error is not None and first[0] == 0:
            self.aclose()
            await self.result  # raises the run's error
        self.first = first

    @property
    def model_id(self) -> str | None:
        return self.first[1].model if self.first else None

    @property
    def provider_id(self) -> str | None:
        return self.first[1].provider if self.first else None

    async def next(self) -> tuple[int, StreamEvent]:
        if self.first is not None:
            first, self.first = self.first, None
            return first
        item = await self.relay.next()
        if item[1].kind == "end":
            self.finished = True
        return item

    def client_gone(self) -> None:
        """The client hung up: the run goes on (it may resume) unless it asked otherwise."""
        if self.cancel_on_disconnect and not self.finished:
            self.finished = True
            self._streams.spawn(self.handle.cancel())

    def aclose(self) -> None:
        self.relay.aclose()
        if self._inbox is not None:
            self._streams.handoff.close(self.request_id, self._inbox)


class DurableStreams:
    """Start, relay, resume and cancel stream runs on Temporal (None from :meth:`open`:
    Temporal is unavailable, stream in-process)."""

    def __init__(self, state: AppState, temporal: TemporalRunner, breaker: CircuitBreaker,
                 relay_worker: RelayWorker | None) -> None:
        self.state, self.temporal, self.breaker = state, temporal, breaker
        self.relay_worker = relay_worker
        self.handoff = relay_worker.handoff if relay_worker is not None else Handoff()

    def spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                await coro
        task = asyncio.get_running_loop().create_task(run())
        self.state.background.add(task)
        task.add_done_callback(self.state.background.discard)

    async def open(self, inp: ChatInput, *, include_usage: bool,
                   on_result: Callable[[asyncio.Future[ChatOutcome]], Awaitable[None]]
                   ) -> DurableStream | None:
        if not self.breaker.allow():
            self.state.metrics.temporal_fallback.inc()
            return None
        s = self.state.settings
        queue = await self.relay_worker.ensure() if self.relay_worker is not None else None
        inbox = self.handoff.open(inp.request_id) if queue else None
        opts = StreamOptions(relay_queue=queue, include_usage=include_usage,
                             heartbeat_timeout_s=s.temporal_stream_heartbeat_timeout_s)
        run = inp.model_copy(update={"stream": opts})
        attrs, memo = chat_tags(run)
        memo.update(api_key_id=inp.api_key_id, include_usage=include_usage)
        try:
            handle = await self.temporal.start(CHAT_WORKFLOW, run, request_id=inp.request_id,
                                               result_type=ChatOutcome,
                                               search_attributes=attrs, memo=memo)
        except TemporalUnavailable as exc:
            if inbox is not None:
                self.handoff.close(inp.request_id, inbox)
            self.breaker.failure()
            self.state.metrics.temporal_fallback.inc()
            log.warning("Temporal unavailable, streaming %s locally: %s", inp.request_id, exc)
            return None
        self.breaker.success()
        result = asyncio.ensure_future(self.temporal.result(handle))
        client = await self.temporal.client()
        stream = DurableStream(self, handle, Relay(client, inp.request_id, inbox=inbox,
                                                   from_offset=0, result=result),
                               request_id=inp.request_id, include_usage=include_usage,
                               inbox=inbox, result=result)
        await stream.open()  # the caller settles a run that fails here
        self.spawn(on_result(result))  # settled on what the run produced, whoever reads
        return stream

    async def _run_of(self, request_id: str, principal: Principal | None
                      ) -> tuple[WorkflowHandle[Any, ChatOutcome], bool, Mapping[str, Any]]:
        """The run with this id, if the caller may see it: (handle, closed, memo)."""
        try:
            client = await self.temporal.client()
            handle: WorkflowHandle[Any, ChatOutcome] = client.get_workflow_handle(
                request_id, result_type=ChatOutcome)
            desc = await handle.describe()
        except TemporalUnavailable:
            raise NotFound(f"run {request_id} not found (Temporal is unavailable)") from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"run {request_id} not found") from None
            raise
        memo = await desc.memo()
        owner = desc.typed_search_attributes.get(attributes.API_KEY_ID) or memo.get("api_key_id")
        if principal is not None and owner != principal.key_id \
                and "admin" not in principal.scopes:
            raise NotFound(f"run {request_id} not found")
        return handle, desc.status in _CLOSED_STATES, memo

    async def resume(self, request_id: str, principal: Principal | None,
                     from_offset: int) -> DurableStream:
        handle, closed, memo = await self._run_of(request_id, principal)
        if memo.get("kind") != "stream":
            raise NotFound(f"run {request_id} is not a stream")
        if closed:
            try:
                length = await log_length(handle)
            except RPCError as exc:
                raise NotFound(f"the stream of run {request_id} is no longer available: "
                               f"{exc.message}") from None
            if from_offset >= length:
                raise RangeNotSatisfiable(
                    f"run {request_id} is finished and its stream has {length} event(s): "
                    f"nothing after offset {from_offset - 1}")
        result = asyncio.ensure_future(self.temporal.result(handle))
        result.add_done_callback(lambda f: f.cancelled() or f.exception())  # consumed
        client = await self.temporal.client()
        relay = Relay(client, request_id, inbox=None, from_offset=from_offset, result=result)
        return DurableStream(self, handle, relay, request_id=request_id,
                             include_usage=bool(memo.get("include_usage", True)), inbox=None,
                             result=result)

    async def cancel(self, request_id: str, principal: Principal | None) -> str:
        """Request cancellation; the run's status before the request."""
        handle, closed, _ = await self._run_of(request_id, principal)
        if closed:
            return "closed"
        await handle.cancel()
        return "cancelling"

