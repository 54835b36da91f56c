"""A batch's store work: read pending items, store each result, move the batch's status."""

from __future__ import annotations

from temporalio import activity

from engine.names import BATCH_ITEMS, BATCH_STATUS, STORE_ITEM
from shared.orchestration.batch import BatchItem, BatchStatusChange, ItemResult, ItemsPage
from shared.store.batches import BatchStore

FINAL = ("completed", "failed", "cancelled", "expired")


class BatchActivities:
    def __init__(self, store: BatchStore) -> None:
        self._store = store

    @activity.defn(name=BATCH_ITEMS)
    async def batch_items(self, page: ItemsPage) -> list[BatchItem]:
        rows = await self._store.pending(page.batch_id, after=page.after, limit=page.limit)
        return [BatchItem(idx=r.idx, custom_id=r.custom_id, url=r.url, run_input=r.run_input)
                for r in rows]

    @activity.defn(name=STORE_ITEM)
    async def store_item(self, res: ItemResult) -> None:
        await self._store.finish_item(res.batch_id, res.idx, status=res.status,
                                      outcome=res.outcome, error=res.error,
                                      cost_usd=res.cost_usd)

    @activity.defn(name=BATCH_STATUS)
    async def batch_status(self, change: BatchStatusChange) -> None:
        if change.cancel_pending:
            await self._store.cancel_pending(change.batch_id)
        unless: tuple[str, ...] = FINAL if change.status not in FINAL else ()
        if change.status == "in_progress":
            unless = (*FINAL, "cancelling")
        await self._store.set_status(change.batch_id, change.status, unless=unless)
