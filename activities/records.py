"""Durable writes of the request log and rewards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio import activity

from engine.names import RECORD_RUN
from shared.orchestration.ports import RecordBatch

Writer = Callable[[RecordBatch], Awaitable[None]]


class RecordActivities:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    @activity.defn(name=RECORD_RUN)
    async def record_run(self, batch: RecordBatch) -> float:
        """Write the run's request-log row and reward rows before the workflow completes.

        The row's latency is the wall clock since the gateway received the request, read
        here (workflow code has only ``workflow.now()``, see RecordBatch); returned so the
        workflow's run summary, and so the gateway's metrics, carry the same figure."""
        stamped = batch.at_wall_clock(datetime.now(UTC))
        await self._writer(stamped)
        return stamped.record.latency_ms
