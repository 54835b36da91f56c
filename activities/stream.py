"""The durable stream's provider-call activity: read the provider's SSE, append the deltas
to the run's Workflow Stream (batched), hand them at once to a waiting client in this
process, heartbeat all along.

- Runs on the task queue of the gateway holding the client's connection (the workflow
  schedules it there), so live deltas skip the stream's polls: ``shared/orchestration/
  handoff.py``. A delta is handed over once the server has acknowledged the batch that
  carries it (**durable first**): a client never holds text the log could lose, so when
  that gateway dies, a client resuming elsewhere with its ``Last-Event-ID`` gets exactly
  the rest (no seam). The cost: live deltas arrive in batches (every
  TOKENHUB_TEMPORAL_STREAM_BATCH_MS plus one signal round trip; the first at once).
  On a worker of the shared queue (that gateway died, or the gateway relays by
  subscription) there is no inbox and the deltas reach clients through the stream.
- Heartbeats every 0.2 s (the worker throttles what it sends to the server): a dead
  process's call is retried after the heartbeat timeout, and a cancelled run stops the
  call — and the upstream read — at the next heartbeat.
- A retried (or moved) call first re-reads the log: what an earlier try appended stays,
  and the provider is asked to continue from there (``shared/providers/prefill.py``).
  Offsets of the new deltas follow the log's, so nothing is duplicated.
- Before its first delta a failure is classified as for any call (transient → retried by
  the RetryPolicy); after it, the failure is never retried on this model: the workflow
  continues the answer on the next candidate.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.contrib.workflow_streams import WorkflowStreamClient

from activities.provider import AdapterLookup
from engine.failures import attempt_failure
from engine.names import STREAM_MODEL, STREAM_TOPIC
from engine.streams import read_log
from shared.contracts import Attempt, StreamChunk, Usage
from shared.errors import NotFound, ProviderError
from shared.orchestration.calls import provider_call
from shared.orchestration.durable_stream import (
    answer_of,
    estimate_tokens,
    prompt_tokens,
)
from shared.orchestration.handoff import Handoff, Inbox
from shared.orchestration.streamlog import StreamCall, StreamEvent, StreamPiece
from shared.providers.prefill import continuation, strip_restated

HEARTBEAT_EVERY_S = 0.2


async def _heartbeat() -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_S)


class _Delivery:
    """Publishes the call's deltas to the log and hands each to the waiting connection
    (``inbox``, if there is one in this process) once the server has it: durable first."""

    def __init__(self, publisher: WorkflowStreamClient, inbox: Inbox | None) -> None:
        self._publisher, self._inbox = publisher, inbox
        self._topic = publisher.topic(STREAM_TOPIC, type=StreamEvent)
        self._unsent: list[tuple[int, StreamEvent]] = []  # not in the client's buffer yet
        self._unconfirmed: list[tuple[int, StreamEvent]] = []  # sent, not acknowledged
        self._lock = asyncio.Lock()

    def publish(self, offset: int, event: StreamEvent) -> None:
        self._unsent.append((offset, event))

    async def flush(self) -> None:
        """Send what was published so far as one batch; hand it to the connection once the
        server acknowledged it, in log order (one flush at a time: the lock keeps the
        order). Deltas published meanwhile wait for the next flush: they only enter the
        client's buffer here, because its ``flush()`` returns once that buffer is empty,
        which a steady stream on a slow server never is (every delta would then wait for
        the end of the stream). A failed flush leaves its batch pending in the client,
        retried first (same sequence) by the next one."""
        async with self._lock:
            batch, self._unsent = self._unsent, []
            for item in batch:
                self._topic.publish(item[1])
            self._unconfirmed += batch
            await self._publisher.flush()
            confirmed, self._unconfirmed = self._unconfirmed, []
            if self._inbox is not None:
                for offset, event in confirmed:
                    self._inbox.put(offset, event)

    async def flush_every(self, every: timedelta) -> None:
        """Publish a batch every ``every``, on a fixed schedule (a flush's round trip does
        not stretch the period, so live deltas wait at most about one interval). The
        client's own flusher is not used: its ``async with`` exit can hang on Python 3.11
        when a forced flush races the cancellation of its timer."""
        loop = asyncio.get_running_loop()
        period = every.total_seconds()
        due = loop.time() + period
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self.flush()
            due = max(due + period, loop.time())  # after a slow flush: at once, not a burst


class StreamActivities:
    """Holds the process's provider adapters and, in a gateway, its live-delta handoff."""

    def __init__(self, lookup: AdapterLookup, *, attempt_timeout_s: float,
                 handoff: Handoff | None = None, batch_interval_s: float = 0.1) -> None:
        self._lookup = lookup
        self._timeout = attempt_timeout_s
        self._handoff = handoff
        self._batch = timedelta(seconds=batch_interval_s)

    @activity.defn(name=STREAM_MODEL)
    async def stream_model(self, call: StreamCall) -> StreamPiece:
        info = activity.info()
        started = time.perf_counter()
        publisher = WorkflowStreamClient.from_within_activity(batch_interval=self._batch)
        offset, prefix = call.base_offset, call.prefix
        beat = asyncio.create_task(_heartbeat())
        if info.attempt > 1 or call.resume:  # an earlier try may have appended to the log
            # (the query may wait for the run's workflow task to leave a dead worker's
            # sticky queue: seconds, heartbeating meanwhile)
            client = activity.client()
            try:
                log = await read_log(client, client.get_workflow_handle(info.workflow_id or ""))
            except BaseException:
                beat.cancel()
                raise
            offset, prefix = len(log), answer_of([ev for _, ev in log])[0]
        recovered = prefix[len(call.prefix):]  # appended by earlier tries of this call
        model = call.call.model
        try:
            found = self._lookup(model.provider_id)
            adapter = await found if inspect.isawaitable(found) else found
        except NotFound as exc:
            beat.cancel()
            raise attempt_failure(ProviderError(exc.message, error_class="fatal"),
                                  tries=info.attempt, latency_ms=0.0) from None
        pcall = continuation(provider_call(call.call, self._timeout), adapter.type, prefix)
        prefilled = prefix if adapter.type == "anthropic" else ""  # its seam may restate
        inbox = self._handoff.get(call.call.request_id) if self._handoff else None
        delivery = _Delivery(publisher, inbox)
        produced: list[str] = []
        usage: Usage | None = None
        background = [beat, asyncio.create_task(delivery.flush_every(self._batch))]
        if inbox is not None:
            inbox.attempt_started()
        try:
            async for chunk in adapter.stream(pcall):
                usage = chunk.usage or usage
                event = self._event(chunk, model.id, model.provider_id, offset,
                                    "" if produced else prefilled)
                if event is None:
                    continue
                delivery.publish(offset, event)
                offset += 1
                if not produced:  # the first delta at once, the rest batched
                    await delivery.flush()
                produced.append(event.delta)
        except ProviderError as err:
            tokens = None
            if "".join(produced) or recovered:  # after the first delta: never retried here
                tokens = self._tokens(pcall.messages, recovered, produced, None)
            raise attempt_failure(err, tries=info.attempt, latency_ms=(
                time.perf_counter() - started) * 1000, produced=tokens) from None
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            # everything produced is in the log before the call reports (also when it was
            # cancelled: the run is charged on it), and handed to the connection
            try:
                await delivery.flush()
            finally:
                if inbox is not None:
                    inbox.attempt_ended()
        tokens_in, tokens_out = self._tokens(pcall.messages, recovered, produced, usage)
        text = recovered + "".join(produced)
        attempt = Attempt(
            model=model.id, provider=model.provider_id, outcome="ok", status=200,
            latency_ms=round((time.perf_counter() - started) * 1000, 3), tries=info.attempt,
            cost_usd=model.cost_usd(tokens_in, tokens_out), input_tokens=tokens_in,
            output_tokens=tokens_out, step=call.call.step)
        return StreamPiece(attempt=attempt, text=text, next_offset=offset)

    @staticmethod
    def _event(chunk: StreamChunk, model: str, provider: str, offset: int,
               prefix: str) -> StreamEvent | None:
        """The log event of one provider chunk (None: nothing a client would see). The
        very first event of a stream is kept even when empty (it carries the role)."""
        delta = strip_restated(prefix, chunk.delta) if prefix else chunk.delta
        if not (delta or chunk.tool_calls or chunk.finish_reason or offset == 0):
            return None
        return StreamEvent(delta=delta, tool_calls=chunk.tool_calls,
                           finish_reason=chunk.finish_reason, model=model, provider=provider)

    @staticmethod
    def _tokens(messages: list[dict[str, Any]], recovered: str, produced: list[str],
                usage: Usage | None) -> tuple[int, int]:
        """(input, output) tokens to charge: the provider's usage when it reported one, else
        the text's characters / 4; text an earlier (dead) try produced is added as text."""
        text = "".join(produced)
        tokens_in = usage.prompt_tokens if usage and usage.prompt_tokens else \
            prompt_tokens(messages)
        tokens_out = usage.completion_tokens if usage and usage.completion_tokens else \
            estimate_tokens(text)
        return tokens_in, tokens_out + estimate_tokens(recovered)
