"""Request-log and reward writes, batched off the request's critical path.

``submit`` only enqueues; a background task writes a batch every ``interval_s`` (at most
``max_transaction`` rows), one transaction and one ``executemany`` per table, so the write
lock is held for few event-loop round trips (several gateway processes may share one
SQLite file). Rows are built ``batch_size`` at a time, yielding to the loop in between.
``submit_paced`` adds backpressure: past ``high_water`` pending rows the caller waits,
so a saturated gateway slows to the write rate instead of piling rows up in memory
(measured in bench/: without it the backlog grew ~3 KB per request at saturation).
A writer thread was tried too: it kept up, but GIL hand-offs cost ~1 ms per request.

``write_now`` commits before returning (Temporal activities need that); ``aclose``
drains everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import insert

from shared.contracts import RequestRecord, RewardRecord
from shared.store.db import create_engine
from shared.store.tables import RequestLogRow, RewardRow

log = logging.getLogger("tokenhub.store")

Item = tuple[RequestRecord, list[RewardRecord]]


def _request_row(r: RequestRecord) -> dict[str, Any]:
    row = r.model_dump(mode="python")
    row["attempts"] = [a.model_dump(mode="json") for a in r.attempts]
    return row


class RequestLogWriter:
    def __init__(self, url: str, *, batch_size: int = 100, interval_s: float = 0.1,
                 max_transaction: int = 1000, high_water: int = 2000,
                 checkpoint_s: float = 1.0) -> None:
        # SQLite: a commit that triggers the WAL auto-checkpoint waits for it (fsyncs: over a
        # second on slow disks, measured here), and the backlog then hits backpressure; so
        # this engine's commits never checkpoint, and a side task does it on its own
        # connection every ``checkpoint_s``.
        self._sqlite = url.startswith("sqlite")
        self._engine = create_engine(url, wal_autocheckpoint=False)  # SQLite only
        self._checkpoint_s = checkpoint_s
        self._checkpointer: asyncio.Task[None] | None = None
        self._batch = batch_size
        self._interval = interval_s
        self._max_tx = max_transaction
        self._high_water = high_water
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._inflight: list[Item] = []  # taken from the queue, not yet committed
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Future[None] | None = None
        self.failed_rows = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize() + len(self._inflight)

    @property
    def writing(self) -> bool:
        """Rows submitted and not yet committed (queued, batching, or being written)."""
        return self.pending > 0 or (self._current is not None and not self._current.done())

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="request-log-writer")
        if self._sqlite and self._checkpointer is None:
            self._checkpointer = asyncio.create_task(self._checkpoints(),
                                                     name="request-log-checkpoint")

    async def _checkpoints(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self._checkpoint_s)
            try:
                async with self._engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                failures = 0
            except Exception:  # busy or transient: the next round checkpoints
                failures += 1
                # nothing else checkpoints this WAL: say so when it keeps failing
                level = logging.WARNING if failures % 30 == 0 else logging.DEBUG
                log.log(level, "WAL checkpoint failed (%d in a row)", failures,
                        exc_info=True)

    def submit(self, record: RequestRecord, rewards: list[RewardRecord] | None = None) -> None:
        """Enqueue the rows (never blocks)."""
        self._queue.put_nowait((record, list(rewards or [])))

    async def submit_paced(self, record: RequestRecord,
                           rewards: list[RewardRecord] | None = None) -> None:
        """``submit``, waiting first while more than ``high_water`` rows are pending."""
        while self._task is not None and self._queue.qsize() > self._high_water:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.submit(record, rewards)

    async def write_now(self, record: RequestRecord,
                        rewards: list[RewardRecord] | None = None) -> None:
        """Write and commit before returning (raises if the write failed)."""
        await self._write([(record, list(rewards or []))], raise_errors=True)

    async def flush(self) -> None:
        """Write everything submitted so far."""
        items, self._inflight = self._inflight, []
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        await self._write(items)

    async def aclose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._current is not None:
            await self._current
        await self.flush()
        await self._engine.dispose()

    async def _loop(self) -> None:
        while True:
            self._inflight = [await self._queue.get()]
            # Wait to batch up, unless the backlog nears the backpressure mark: a write per
            # interval leaves the write lock free in between (several gateway processes
            # share one SQLite file; back-to-back writes starved one of them for seconds).
            if self._queue.qsize() < self._high_water // 2:
                await asyncio.sleep(self._interval)
            while len(self._inflight) < self._max_tx and not self._queue.empty():
                self._inflight.append(self._queue.get_nowait())
            batch, self._inflight = self._inflight, []
            # shielded: a shutdown must not cancel a write half-way (aclose awaits it)
            self._current = asyncio.ensure_future(self._write(batch))
            await asyncio.shield(self._current)


    async def _write(self, items: list[Item], *, raise_errors: bool = False) -> None:
        if not items:
            return
        try:
            # rows built before the transaction; one executemany per table: the write
            # lock is held for as few event-loop round trips as possible (under load each
            # costs a loop iteration, and other processes may be waiting for the lock)
            rows: list[dict[str, Any]] = []
            rewards: list[dict[str, Any]] = []
            for i in range(0, len(items), self._batch):
                if i:
                    await asyncio.sleep(0)  # a large backlog must not hold the loop
                for r, ws in items[i:i + self._batch]:
                    rows.append(_request_row(r))
                    rewards.extend(w.model_dump(mode="python") for w in ws)
            async with self._engine.begin() as conn:
                await conn.execute(insert(RequestLogRow), rows)
                if rewards:
                    await conn.execute(insert(RewardRow), rewards)
        except Exception:
            if raise_errors:
                raise
            self.failed_rows += len(items)
            log.exception("request log write failed for %d row(s)", len(items))
