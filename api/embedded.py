"""Temporal workers inside the gateway process: the one place the gateway imports the
worker room.

- the embedded worker (TOKENHUB_TEMPORAL_EMBEDDED_WORKER) on the shared queue: workflow
  starts can then be eager (no matching round trip for the first workflow task);
- the relay worker (TOKENHUB_TEMPORAL_STREAM_RELAY=local, the default) on a task queue of
  this process alone: durable streams' provider calls for the clients this gateway holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from shared.orchestration.handoff import Handoff
from shared.orchestration.ports import RecordBatch
from shared.security.budgets import BudgetLedger
from shared.store.batches import BatchStore
from worker.build import build_relay_worker, build_worker

log = logging.getLogger("tokenhub.api")


async def start_embedded_worker(state: AppState, temporal: TemporalRunner | None,
                                handoff: Handoff | None = None) -> asyncio.Task[None] | None:
    """With TOKENHUB_TEMPORAL_EMBEDDED_WORKER, run a worker in this process: workflow
    starts can then be eager (no matching round trip for the first workflow task)."""
    if temporal is None or not state.settings.temporal_embedded_worker:
        return None
    try:
        client = await temporal.client()
    except TemporalUnavailable as exc:
        log.warning("embedded worker not started: %s", exc)
        return None

    async def write(batch: RecordBatch) -> None:
        await state.log_writer.write_now(batch.record, batch.rewards)

    worker = build_worker(client, task_queue=state.settings.temporal_task_queue,
                          lookup=state.adapter, writer=write,
                          attempt_timeout_s=state.retry.attempt_timeout_s,
                          sandbox=state.settings.temporal_workflow_sandbox, handoff=handoff,
                          stream_batch_s=state.settings.temporal_stream_batch_ms / 1000,
                          batches=BatchStore(state.sessionmaker),
                          budgets=BudgetLedger(state.sessionmaker,
                                               ttl_s=state.settings.budget_reservation_ttl_s))
    temporal.eager = True
    return asyncio.create_task(worker.run(), name="embedded-temporal-worker")


class RelayWorker:
    """This gateway's worker-specific task queue, started on first use (Temporal may be
    down when the gateway starts) and stopped with the gateway."""

    def __init__(self, state: AppState, temporal: TemporalRunner, handoff: Handoff) -> None:
        self._state, self._temporal, self.handoff = state, temporal, handoff
        self.queue = f"{state.settings.temporal_task_queue}-relay-{uuid.uuid4().hex[:12]}"
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def ensure(self) -> str | None:
        """The queue, once its worker polls (None if it cannot run: no Temporal)."""
        if self._task is not None and not self._task.done():
            return self.queue
        async with self._lock:
            if self._task is not None and not self._task.done():
                return self.queue
            try:
                client = await self._temporal.client()
            except TemporalUnavailable:
                return None
            s = self._state.settings
            worker = build_relay_worker(client, task_queue=self.queue,
                                        lookup=self._state.adapter,
                                        attempt_timeout_s=self._state.retry.attempt_timeout_s,
                                        handoff=self.handoff,
                                        stream_batch_s=s.temporal_stream_batch_ms / 1000)
            self._task = asyncio.create_task(worker.run(), name="relay-temporal-worker")
            log.info("stream relay worker polling %s", self.queue)
            return self.queue

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
