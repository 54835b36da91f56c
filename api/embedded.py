"""A Temporal worker inside the gateway process (TOKENHUB_TEMPORAL_EMBEDDED_WORKER).

The one place the gateway imports the worker room: workflow starts can then be eager
(no matching round trip for the first workflow task).
"""

from __future__ import annotations

import asyncio
import logging

from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from shared.orchestration.ports import RecordBatch
from worker.build import build_worker

log = logging.getLogger("tokenhub.api")


async def start_embedded_worker(state: AppState, temporal: TemporalRunner | None
                                 ) -> asyncio.Task[None] | None:
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
                          sandbox=state.settings.temporal_workflow_sandbox)
    temporal.eager = True
    return asyncio.create_task(worker.run(), name="embedded-temporal-worker")
