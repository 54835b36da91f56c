"""BatchChunkWorkflow: a group of a batch's items run inside one workflow (the grouped
layout: one workflow's overhead shared by many items; every item still findable by the
chunk's TokenHubBatchId and TokenHubCustomIds, and its request-log row)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from engine.names import BATCH_CHUNK_WORKFLOW
    from shared.orchestration.batch import BatchItem, ChunkInput, ChunkResult, ItemResult
    from workflows import attributes
    from workflows.batch_items import hold, parse, run_inline, store


@workflow.defn(name=BATCH_CHUNK_WORKFLOW)
class BatchChunkWorkflow:
    @workflow.run
    async def run(self, inp: ChunkInput) -> ChunkResult:
        gate = asyncio.Semaphore(inp.max_concurrency)
        out = ChunkResult()

        async def one(item: BatchItem) -> None:
            async with gate:
                run = parse(item)
                done = ItemResult(batch_id=inp.batch_id, idx=item.idx, status="completed",
                                  api_key_id=inp.api_key_id)
                res = await hold(run, done, inp.api_key_id, inp.monthly_budget_usd) \
                    or await run_inline(run, done)
            await store(res)
            out.completed += res.status == "completed"
            out.failed += res.status == "failed"
            out.cost_usd += res.cost_usd

        tasks = [asyncio.create_task(one(item)) for item in inp.items]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:  # the batch was cancelled: stop every item first
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        attributes.upsert_outcome(status="ok", cost_usd=out.cost_usd)
        return out
