"""BatchWorkflow: a batch's items, bounded, stored as they end — each as a child Chat/Plan
run, or in groups run by child BatchChunkWorkflows (shared/orchestration/batch.py says how).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from engine import attributes as keys
    from engine.names import (
        BATCH_CHUNK_WORKFLOW,
        BATCH_ITEMS,
        BATCH_STATUS,
        BATCH_WORKFLOW,
        PROGRESS_QUERY,
    )
    from shared.orchestration.batch import (
        PAGE,
        BatchInput,
        BatchItem,
        BatchProgress,
        BatchStatusChange,
        ChunkInput,
        ChunkResult,
        ItemResult,
        ItemsPage,
    )
    from workflows import attributes
    from workflows.batch_items import STORE, STORE_RETRY, hold, parse, run_child, store

CHUNKS_AT_ONCE = 2  # grouped layout: the next chunk overlaps the tail of the previous


def chunk_tags(inp: BatchInput, items: list[BatchItem]) -> TypedSearchAttributes | None:
    if not attributes.tagged():
        return None
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(keys.KIND, "batch_chunk"), SearchAttributePair(keys.STATUS, "running"),
        SearchAttributePair(keys.BATCH_ID, inp.batch_id),
        SearchAttributePair(keys.CUSTOM_IDS, [i.custom_id[:255] for i in items if i.custom_id])]
    if inp.api_key_id:
        pairs.append(SearchAttributePair(keys.API_KEY_ID, inp.api_key_id))
    return TypedSearchAttributes(pairs)


@workflow.defn(name=BATCH_WORKFLOW)
class BatchWorkflow:
    @workflow.init
    def __init__(self, inp: BatchInput) -> None:
        self.state = BatchProgress(total=inp.total, completed=inp.completed, failed=inp.failed,
                                   cost_usd=inp.cost_usd)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> BatchProgress:
        return self.state

    async def _status(self, batch_id: str, status: str, *, cancel_pending: bool = False
                      ) -> None:
        await workflow.execute_local_activity(
            BATCH_STATUS, BatchStatusChange(batch_id=batch_id, status=status,
                                            cancel_pending=cancel_pending),
            start_to_close_timeout=STORE, retry_policy=STORE_RETRY)

    @workflow.run
    async def run(self, inp: BatchInput) -> BatchProgress:
        # a sliding window: the next item (or chunk) starts as soon as one ends
        grouped = inp.group_size > 1
        gate = asyncio.Semaphore(CHUNKS_AT_ONCE if grouped else inp.max_concurrency)
        running: set[asyncio.Task[None]] = set()
        try:
            if not inp.started:
                await self._status(inp.batch_id, "in_progress")
            after, handled = inp.after, 0
            while handled < inp.items_per_run:
                page: list[BatchItem] = await workflow.execute_local_activity(
                    BATCH_ITEMS, ItemsPage(batch_id=inp.batch_id, after=after,
                                           limit=min(PAGE, inp.items_per_run - handled)),
                    result_type=list[BatchItem], start_to_close_timeout=STORE,
                    retry_policy=STORE_RETRY)
                if not page:
                    break
                size = inp.group_size if grouped else 1
                for i in range(0, len(page), size):
                    await gate.acquire()
                    group = page[i:i + size]
                    task = asyncio.create_task(self._chunk(inp, group, gate) if grouped
                                               else self._item(inp, group[0], gate))
                    running.add(task)
                    task.add_done_callback(running.discard)
                after, handled = page[-1].idx, handled + len(page)
                if workflow.info().is_continue_as_new_suggested():
                    break
            await workflow.wait_condition(lambda: not running)
            if handled >= inp.items_per_run or workflow.info().is_continue_as_new_suggested():
                s = self.state  # the history stays small: the rest in a fresh run
                workflow.continue_as_new(inp.model_copy(update={
                    "after": after, "completed": s.completed, "failed": s.failed,
                    "cost_usd": s.cost_usd, "started": True}))
            await self._status(inp.batch_id, "completed")
            self.state.status = "completed"
            attributes.upsert_outcome(status="ok", cost_usd=self.state.cost_usd)
            return self.state
        except asyncio.CancelledError:
            # running items are cancelled with the batch (and stored so); none starts anew
            tasks = list(running)
            for task in tasks:
                task.cancel()
            await workflow.wait_condition(lambda: all(t.done() for t in tasks))
            await self._status(inp.batch_id, "cancelled", cancel_pending=True)
            self.state.status = "cancelled"
            attributes.upsert_outcome(status="cancelled", cost_usd=self.state.cost_usd)
            raise

    def _count(self, completed: int, failed: int, cost_usd: float) -> None:
        self.state.completed += completed
        self.state.failed += failed
        self.state.cost_usd += cost_usd

    async def _item(self, inp: BatchInput, item: BatchItem, gate: asyncio.Semaphore) -> None:
        """One item as its own child Chat/Plan run; its result stored (gate acquired)."""
        self.state.running += 1
        try:
            run = parse(item)
            done = ItemResult(batch_id=inp.batch_id, idx=item.idx, status="completed",
                              api_key_id=inp.api_key_id)
            res = await hold(run, done, inp.api_key_id, inp.monthly_budget_usd) \
                or await run_child(inp.batch_id, item, run, done, inp.api_key_id)
        finally:
            self.state.running -= 1
            gate.release()
        await store(res)
        self._count(res.status == "completed", res.status == "failed", res.cost_usd)

    async def _chunk(self, inp: BatchInput, items: list[BatchItem],
                     gate: asyncio.Semaphore) -> None:
        """A group of items in one child BatchChunkWorkflow (which stores each result)."""
        self.state.running += len(items)
        try:
            res: ChunkResult = await workflow.execute_child_workflow(
                BATCH_CHUNK_WORKFLOW, ChunkInput(
                    batch_id=inp.batch_id, items=items, api_key_id=inp.api_key_id,
                    monthly_budget_usd=inp.monthly_budget_usd,
                    max_concurrency=max(1, inp.max_concurrency // CHUNKS_AT_ONCE)),
                id=f"{inp.batch_id}-g{items[0].idx}", result_type=ChunkResult,
                search_attributes=chunk_tags(inp, items),
                memo={"kind": "batch_chunk", "batch_id": inp.batch_id,
                      "api_key_id": inp.api_key_id},
                execution_timeout=timedelta(hours=24))
        finally:
            self.state.running -= len(items)
            gate.release()
        self._count(res.completed, res.failed, res.cost_usd)
