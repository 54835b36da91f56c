"""Files and batches (``/v1/files``, ``/v1/batches``), through the one store.

**Where file bodies live: in the database** (``file_chunks``, 1 MiB pieces), not under
the data dir. Gateway processes and workers may run on other hosts or containers
(docker-compose runs them apart) and all share the database, not a directory; a file
deleted or a batch created is then one transaction everywhere, and PostgreSQL's backups
cover it. Pieces keep every row small (no 200 MiB value in one row or one read).

A batch's items are rows of ``batch_items`` made when the batch is created (each line
parsed, validated and prepared then; a bad line is an item already failed), in the same
transaction as the batch row: a batch exists whole or not at all. Each item's result is
written as it completes, keyed by (batch id, line index), so a write retried after a
crash lands on the same row: no item is lost or counted twice. Output and error files
are not stored: they are rendered from the items when read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.store.tables import BatchItemRow, BatchRow, FileChunkRow, FileRow

CHUNK = 1024 * 1024
INSERT_ROWS = 1000  # items inserted per statement


@dataclass(frozen=True)
class NewItem:
    idx: int
    custom_id: str | None
    url: str | None
    run_input: str | None  # None: the line failed validation (``error`` says why)
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class PendingItem:
    idx: int
    custom_id: str | None
    url: str | None
    run_input: str


def now() -> datetime:
    return datetime.now(UTC)


class BatchStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    # -- files ---------------------------------------------------------------------------
    async def add_file(self, row: FileRow, data: bytes | None = None) -> FileRow:
        async with self._sm() as s, s.begin():
            s.add(row)
            await s.flush()
            if data is not None:
                for seq, start in enumerate(range(0, len(data), CHUNK)):
                    s.add(FileChunkRow(file_id=row.id, seq=seq,
                                       data=data[start:start + CHUNK]))
        return row

    async def file(self, file_id: str) -> FileRow | None:
        async with self._sm() as s:
            return await s.get(FileRow, file_id)

    async def file_bytes(self, file_id: str) -> AsyncIterator[bytes]:
        """An upload's bytes, piece by piece."""
        seq = 0
        while True:
            async with self._sm() as s:
                row = await s.get(FileChunkRow, (file_id, seq))
            if row is None:
                return
            yield row.data
            seq += 1

    async def delete_file(self, file_id: str) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(delete(FileChunkRow).where(FileChunkRow.file_id == file_id))
            await s.execute(delete(FileRow).where(FileRow.id == file_id))

    async def files(self, api_key_id: str | None, *, limit: int) -> Sequence[FileRow]:
        q = select(FileRow).order_by(FileRow.created_at.desc()).limit(limit)
        if api_key_id is not None:
            q = q.where(FileRow.api_key_id == api_key_id)
        async with self._sm() as s:
            return (await s.scalars(q)).all()

    # -- batches -------------------------------------------------------------------------
    async def create_batch(self, batch: BatchRow, files: list[FileRow],
                           items: list[NewItem]) -> None:
        """The batch, its output/error file records and every item, in one transaction."""
        stamp = now()
        async with self._sm() as s, s.begin():
            s.add(batch)
            s.add_all(files)
            await s.flush()
            table = BatchItemRow.__table__
            for start in range(0, len(items), INSERT_ROWS):
                rows = [{"batch_id": batch.id, "idx": it.idx, "custom_id": it.custom_id,
                         "url": it.url, "run_input": it.run_input,
                         "status": "pending" if it.error is None else "failed",
                         "error": it.error, "outcome": None, "cost_usd": 0.0,
                         "updated_at": stamp}
                        for it in items[start:start + INSERT_ROWS]]
                await s.execute(table.insert(), rows)  # type: ignore[attr-defined]

    async def batch(self, batch_id: str) -> BatchRow | None:
        async with self._sm() as s:
            return await s.get(BatchRow, batch_id)

    async def batches(self, api_key_id: str | None, *, limit: int,
                      after: str | None = None) -> Sequence[BatchRow]:
        q = select(BatchRow).order_by(BatchRow.created_at.desc(), BatchRow.id.desc())
        if api_key_id is not None:
            q = q.where(BatchRow.api_key_id == api_key_id)
        async with self._sm() as s:
            if after is not None:
                anchor = await s.get(BatchRow, after)
                if anchor is not None:
                    q = q.where(BatchRow.created_at <= anchor.created_at,
                                BatchRow.id != anchor.id)
            return (await s.scalars(q.limit(limit))).all()

    async def counts(self, batch_id: str) -> dict[str, int]:
        """Items by status, and the cost so far."""
        async with self._sm() as s:
            rows = (await s.execute(
                select(BatchItemRow.status, func.count())
                .where(BatchItemRow.batch_id == batch_id)
                .group_by(BatchItemRow.status))).all()
        return {status: int(n) for status, n in rows}

    async def cost(self, batch_id: str) -> float:
        async with self._sm() as s:
            total = await s.scalar(select(func.coalesce(func.sum(BatchItemRow.cost_usd), 0.0))
                                   .where(BatchItemRow.batch_id == batch_id))
        return float(total or 0.0)

    async def set_status(self, batch_id: str, status: str, *,
                         unless: tuple[str, ...] = ()) -> bool:
        """Move the batch to ``status`` (stamping ``<status>_at``), unless it is in one of
        ``unless``; whether it moved."""
        async with self._sm() as s, s.begin():
            row = await s.get(BatchRow, batch_id)
            if row is None or row.status in unless:
                return False
            stamp = now()
            row.status = status
            row.updated_at = stamp
            row.times = {**row.times, f"{status}_at": stamp.isoformat()}
        return True

    async def pending(self, batch_id: str, *, after: int, limit: int) -> list[PendingItem]:
        async with self._sm() as s:
            rows = (await s.execute(
                select(BatchItemRow.idx, BatchItemRow.custom_id, BatchItemRow.url,
                       BatchItemRow.run_input)
                .where(BatchItemRow.batch_id == batch_id, BatchItemRow.idx > after,
                       BatchItemRow.status == "pending")
                .order_by(BatchItemRow.idx).limit(limit))).all()
        return [PendingItem(idx, cid, url, inp or "") for idx, cid, url, inp in rows]

    async def finish_item(self, batch_id: str, idx: int, *, status: str,
                          outcome: str | None, error: dict[str, Any] | None,
                          cost_usd: float) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(
                update(BatchItemRow)
                .where(BatchItemRow.batch_id == batch_id, BatchItemRow.idx == idx)
                .values(status=status, outcome=outcome, error=error, cost_usd=cost_usd,
                        updated_at=now()))

    async def cancel_pending(self, batch_id: str) -> int:
        async with self._sm() as s, s.begin():
            res = await s.execute(
                update(BatchItemRow)
                .where(BatchItemRow.batch_id == batch_id, BatchItemRow.status == "pending")
                .values(status="cancelled", updated_at=now()))
        return int(getattr(res, "rowcount", 0) or 0)

    async def items(self, batch_id: str, statuses: tuple[str, ...], *,
                    page: int = 500) -> AsyncIterator[BatchItemRow]:
        """The batch's items in these statuses, in line order (paged)."""
        after = -1
        while True:
            async with self._sm() as s:
                rows = (await s.scalars(
                    select(BatchItemRow)
                    .where(BatchItemRow.batch_id == batch_id, BatchItemRow.idx > after,
                           BatchItemRow.status.in_(statuses))
                    .order_by(BatchItemRow.idx).limit(page))).all()
            if not rows:
                return
            for row in rows:
                yield row
            after = rows[-1].idx

    async def delete_batch(self, batch_id: str) -> None:
        """Undo a batch whose workflow could not start (never a half-created batch)."""
        async with self._sm() as s, s.begin():
            await s.execute(delete(BatchItemRow).where(BatchItemRow.batch_id == batch_id))
            await s.execute(delete(FileRow).where(FileRow.batch_id == batch_id))
            await s.execute(delete(BatchRow).where(BatchRow.id == batch_id))
