"""Durable writes of the request log and rewards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity

from engine.names import RECORD_RUN
from shared.orchestration.ports import RecordBatch

Writer = Callable[[RecordBatch], Awaitable[None]]


class RecordActivities:
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    @activity.defn(name=RECORD_RUN)
    async def record_run(self, batch: RecordBatch) -> None:
        """Write the run's request-log row and reward rows before the workflow completes."""
        await self._writer(batch)
