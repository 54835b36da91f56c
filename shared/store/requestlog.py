"""Request-log and reward writes, off the request path.

A dedicated thread owns its own event loop and DB engine: ``submit`` only enqueues
(no I/O, no waiting), and the thread writes batches in one transaction each. Measured
in bench/: on the request loop itself, a batched writer fell behind at ~700 req/s (it
only got a turn between requests) and its queue grew without bound.

``write_now`` waits until its rows are committed (Temporal activities need that before
they return); ``flush`` waits for everything submitted so far; ``aclose`` drains.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any

from sqlalchemy import insert

from shared.contracts import RequestRecord, RewardRecord
from shared.store.db import create_engine, create_sessionmaker
from shared.store.tables import RequestLogRow, RewardRow

log = logging.getLogger("tokenhub.store")

Done = concurrent.futures.Future[None]
Rows = tuple[RequestRecord, list[RewardRecord]]
_STOP = object()


def _request_row(r: RequestRecord) -> dict[str, Any]:
    row = r.model_dump(mode="python")
    row["attempts"] = [a.model_dump(mode="json") for a in r.attempts]
    return row


class RequestLogWriter:
    def __init__(self, url: str, *, batch_size: int = 500, interval_s: float = 0.1,
                 max_queue: int = 100_000, high_water: int = 2_000) -> None:
        self._url = url
        self._batch = batch_size
        self._interval = interval_s
        self._max_queue = max_queue
        self._high_water = high_water
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.failed_rows = 0
        self.dropped_rows = 0

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="request-log-writer",
                                            daemon=True)
            self._thread.start()

    def submit(self, record: RequestRecord, rewards: list[RewardRecord] | None = None) -> None:
        """Enqueue the rows; never blocks. Past ``max_queue`` rows the row is dropped and
        counted (the database is down or far too slow), rather than exhausting memory."""
        if self._queue.qsize() >= self._max_queue:
            self.dropped_rows += 1
            log.error("request log backlog full (%d rows): row %s dropped",
                      self._max_queue, record.request_id)
            return
        self._queue.put(((record, list(rewards or [])), None))

    async def submit_paced(self, record: RequestRecord,
                           rewards: list[RewardRecord] | None = None) -> None:
        """``submit`` with backpressure: past ``high_water`` pending rows the caller waits,
        so a saturated gateway slows down to the write rate instead of piling up rows."""
        while self._queue.qsize() > self._high_water and self._thread is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self.submit(record, rewards)

    async def write_now(self, record: RequestRecord,
                        rewards: list[RewardRecord] | None = None) -> None:
        """Enqueue and wait for the commit (raises if the write failed)."""
        done: Done = concurrent.futures.Future()
        self._queue.put(((record, list(rewards or [])), done))
        await asyncio.wrap_future(done)

    async def flush(self) -> None:
        done: Done = concurrent.futures.Future()
        self._queue.put((None, done))
        await asyncio.wrap_future(done)

    async def aclose(self) -> None:
        if self._thread is None:
            return
        await self.flush()
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        engine = create_engine(self._url)
        sessionmaker = create_sessionmaker(engine)
        try:
            while True:
                batch, waiters, stop = self._collect()
                if batch:
                    error = loop.run_until_complete(self._write(sessionmaker, batch))
                    for w in waiters:
                        if error is None:
                            w.set_result(None)
                        else:
                            w.set_exception(error)
                else:
                    for w in waiters:
                        w.set_result(None)
                if stop:
                    return
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()

    def _collect(self) -> tuple[list[Rows], list[Done], bool]:
        """Wait for work, then gather up to ``batch_size`` items for ``interval_s``."""
        first = self._queue.get()
        if first is _STOP:
            return [], [], True
        items = [first]
        if first[1] is not None:
            return self._split(items)
        deadline = time.monotonic() + self._interval
        while len(items) < self._batch:
            left = deadline - time.monotonic()
            if left <= 0 and self._queue.empty():
                break
            try:
                item = self._queue.get(timeout=max(left, 0.0)) if left > 0 else \
                    self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            items.append(item)
            if item[1] is not None:  # someone waits for this commit: write now
                break
        return self._split(items)

    @staticmethod
    def _split(items: list[Any]) -> tuple[list[Rows], list[Done], bool]:
        rows = [rows for rows, _ in items if rows is not None]
        waiters = [w for _, w in items if w is not None]
        return rows, waiters, False

    async def _write(self, sessionmaker: Any, batch: list[Rows]) -> Exception | None:
        requests = [_request_row(r) for r, _ in batch]
        rewards = [w.model_dump(mode="python") for _, ws in batch for w in ws]
        try:
            async with sessionmaker() as session, session.begin():
                await session.execute(insert(RequestLogRow), requests)
                if rewards:
                    await session.execute(insert(RewardRow), rewards)
        except Exception as exc:
            self.failed_rows += len(batch)
            log.exception("request log write failed for %d row(s)", len(batch))
            return exc
        return None
