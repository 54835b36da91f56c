"""A batch's store work: read pending items, store each result, move the batch's status."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from engine.names import BATCH_ITEMS, BATCH_STATUS, HOLD_ITEM, SETTLE_CHARGE, STORE_ITEM
from shared.errors import BudgetExceeded
from shared.orchestration.batch import (
    BatchItem,
    BatchStatusChange,
    Hold,
    ItemHold,
    ItemResult,
    ItemsPage,
)
from shared.orchestration.progress import Charge
from shared.security.budgets import BudgetLedger, Reservation
from shared.store.batches import BatchStore

FINAL = ("completed", "failed", "cancelled", "expired")


class BatchActivities:
    """Budgets apply per item: an item's estimate is held on its key's monthly budget before
    it runs (refused: the item fails ``budget_exceeded``) and its real cost charged when its
    result is stored, on the ledger every gateway process uses (shared/security/budgets.py).
    A worker dying between the two leaves a hold that expires (TOKENHUB_BUDGET_RESERVATION_
    TTL_S), as a gateway's would."""

    def __init__(self, store: BatchStore, ledger: BudgetLedger) -> None:
        self._store, self._ledger = store, ledger

    @activity.defn(name=HOLD_ITEM)
    async def hold_item(self, hold: ItemHold) -> Hold:
        try:
            res = await self._ledger.reserve(hold.api_key_id, hold.budget_usd,
                                             hold.estimated_usd)
        except BudgetExceeded as err:
            raise ApplicationError(err.message, type=err.error_type,
                                   non_retryable=True) from None
        return Hold(id=res.id, month=res.month)

    @activity.defn(name=BATCH_ITEMS)
    async def batch_items(self, page: ItemsPage) -> list[BatchItem]:
        rows = await self._store.pending(page.batch_id, after=page.after, limit=page.limit)
        return [BatchItem(idx=r.idx, custom_id=r.custom_id, url=r.url, run_input=r.run_input)
                for r in rows]

    @activity.defn(name=SETTLE_CHARGE)
    async def settle_charge(self, charge: Charge) -> None:
        """An async run's hold, settled on what it cost (the run calls this as it ends)."""
        await self._ledger.settle(Reservation(charge.api_key_id, charge.month, 0.0,
                                              id=charge.hold_id), charge.cost_usd)

    @activity.defn(name=STORE_ITEM)
    async def store_item(self, res: ItemResult) -> None:
        await self._store.finish_item(res.batch_id, res.idx, status=res.status,
                                      outcome=res.outcome, error=res.error,
                                      cost_usd=res.cost_usd)
        if res.api_key_id is not None:
            hold = res.hold or Hold(month=self._ledger.month())
            await self._ledger.settle(Reservation(res.api_key_id, hold.month, 0.0,
                                                  id=hold.id), res.cost_usd)

    @activity.defn(name=BATCH_STATUS)
    async def batch_status(self, change: BatchStatusChange) -> None:
        if change.cancel_pending:
            await self._store.cancel_pending(change.batch_id)
        unless: tuple[str, ...] = FINAL if change.status not in FINAL else ()
        if change.status == "in_progress":
            unless = (*FINAL, "cancelling")
        await self._store.set_status(change.batch_id, change.status, unless=unless)
