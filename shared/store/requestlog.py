"""Request-log and reward writes, batched off the hot path.

``submit`` never waits on the database: rows go to a bounded queue that a
background task flushes every ``interval_s`` or ``batch_size`` rows, in one
transaction per batch. When the queue is full, ``submit`` schedules a direct
write instead of dropping the row; ``aclose`` drains everything. ``write_now``
is for callers that need durability before they return (Temporal activities).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.contracts import RequestRecord, RewardRecord
from shared.store.tables import RequestLogRow, RewardRow

log = logging.getLogger("tokenhub.store")

Item = tuple[RequestRecord, list[RewardRecord]]


def _request_row(r: RequestRecord) -> dict[str, object]:
    row = r.model_dump(mode="python")
    row["attempts"] = [a.model_dump(mode="json") for a in r.attempts]
    return row


class RequestLogWriter:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *,
                 batch_size: int = 50, interval_s: float = 0.1,
                 max_queue: int = 50_000) -> None:
        self._sm = sessionmaker
        self._batch = batch_size
        self._interval = interval_s
        self._queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None
        self._overflow: set[asyncio.Task[None]] = set()
        self._inflight: list[Item] = []  # taken from the queue, not yet committed
        self.failed_rows = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="request-log-writer")

    def submit(self, record: RequestRecord, rewards: list[RewardRecord] | None = None) -> None:
        item = (record, list(rewards or []))
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            task = asyncio.create_task(self._write([item]))
            self._overflow.add(task)
            task.add_done_callback(self._overflow.discard)

    async def write_now(self, record: RequestRecord,
                        rewards: list[RewardRecord] | None = None) -> None:
        await self._write([(record, list(rewards or []))], raise_errors=True)

    async def flush(self) -> None:
        """Write everything submitted so far."""
        items = self._drain()
        if items:
            await self._write(items)
        if self._overflow:
            await asyncio.gather(*self._overflow)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    def _drain(self) -> list[Item]:
        items, self._inflight = self._inflight, []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    async def _loop(self) -> None:
        while True:
            self._inflight = [await self._queue.get()]
            await asyncio.sleep(self._interval)
            while len(self._inflight) < self._batch * 10 and not self._queue.empty():
                self._inflight.append(self._queue.get_nowait())
            await self._write(self._inflight)
            self._inflight = []

    async def _write(self, items: list[Item], *, raise_errors: bool = False) -> None:
        """One transaction per chunk of ``batch_size`` rows: the rows are converted chunk
        by chunk, so the event loop is never held for a whole backlog."""
        for i in range(0, len(items), self._batch):
            chunk = items[i:i + self._batch]
            requests = [_request_row(r) for r, _ in chunk]
            rewards = [w.model_dump(mode="python") for _, ws in chunk for w in ws]
            try:
                async with self._sm() as session, session.begin():
                    await session.execute(insert(RequestLogRow), requests)
                    if rewards:
                        await session.execute(insert(RewardRow), rewards)
            except Exception:
                if raise_errors:
                    raise
                self.failed_rows += len(chunk)
                log.exception("request log write failed for %d row(s)", len(chunk))
