"""BatchWorkflow: a batch's items as child Chat/Plan runs, bounded, stored as they end
(shared/orchestration/batch.py says how)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import CancelledError as TemporalCancelled

with workflow.unsafe.imports_passed_through():
    from engine import attributes as keys
    from engine.names import (
        BATCH_ITEMS,
        BATCH_STATUS,
        BATCH_WORKFLOW,
        CHAT_WORKFLOW,
        HOLD_ITEM,
        PLAN_WORKFLOW,
        PROGRESS_QUERY,
        STORE_ITEM,
    )
    from shared.orchestration.batch import (
        PAGE,
        BatchInput,
        BatchItem,
        BatchProgress,
        BatchStatusChange,
        Hold,
        ItemHold,
        ItemResult,
        ItemsPage,
        is_plan,
    )
    from shared.orchestration.chat import ChatInput, ChatOutcome
    from shared.orchestration.plan import PlanInput, PlanOutcome
    from workflows import attributes

STORE = timedelta(seconds=30)
STORE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))  # until the store answers


def _tags(inp: ChatInput | PlanInput, batch_id: str, custom_id: str | None
          ) -> TypedSearchAttributes | None:
    if not attributes.tagged():
        return None
    mode: str
    if isinstance(inp, ChatInput):
        first, mode, kind = inp.route.candidates[0].model, inp.policy.mode, inp.kind
    else:
        first, mode, kind = inp.primary.candidates[0].model, inp.mode, "plan"
    base = keys.initial(kind=kind, mode=mode, model=first.id, provider=first.provider_id,
                        api_key_id=inp.api_key_id)
    pairs: list[SearchAttributePair[Any]] = [*base.search_attributes,
                                             SearchAttributePair(keys.BATCH_ID, batch_id)]
    if custom_id:
        pairs.append(SearchAttributePair(keys.CUSTOM_ID, custom_id[:255]))
    return TypedSearchAttributes(pairs)


def _failed(err: ChildWorkflowError) -> tuple[dict[str, Any], float]:
    """A failed item's error (status, type, message) and what its calls cost."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        info = cause.details[0] if cause.details else {}
        info = info if isinstance(info, dict) else {}
        summary = info.get("summary") or {}
        return ({"status_code": int(info.get("status", 502)),
                 "type": cause.type or "internal_error", "message": cause.message},
                float(summary.get("cost_usd", 0.0) or 0.0))
    return ({"status_code": 502, "type": "all_providers_failed",
             "message": str(cause or err)}, 0.0)


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
        # a sliding window: the next item starts as soon as one ends (no page barrier)
        gate = asyncio.Semaphore(inp.max_concurrency)
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
                for item in page:
                    await gate.acquire()
                    task = asyncio.create_task(self._item(inp, item, gate))
                    running.add(task)
                    task.add_done_callback(running.discard)
                after, handled = page[-1].idx, handled + len(page)
                if workflow.info().is_continue_as_new_suggested():
                    break
            await asyncio.gather(*running)
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
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            await self._status(inp.batch_id, "cancelled", cancel_pending=True)
            self.state.status = "cancelled"
            attributes.upsert_outcome(status="cancelled", cost_usd=self.state.cost_usd)
            raise

    async def _item(self, inp: BatchInput, item: BatchItem, gate: asyncio.Semaphore) -> None:
        """Run one item and store its result (the gate was acquired for it)."""
        self.state.running += 1
        try:
            res = await self._run_item(inp, item)
        finally:
            self.state.running -= 1
            gate.release()
        await workflow.execute_local_activity(STORE_ITEM, res, start_to_close_timeout=STORE,
                                              retry_policy=STORE_RETRY)
        if res.status == "completed":
            self.state.completed += 1
        elif res.status == "failed":
            self.state.failed += 1
        self.state.cost_usd += res.cost_usd

    async def _run_item(self, inp: BatchInput, item: BatchItem) -> ItemResult:
        run: ChatInput | PlanInput
        result_type: type[ChatOutcome] | type[PlanOutcome]
        if is_plan(item.url):
            run = PlanInput.model_validate_json(item.run_input)
            workflow_name, result_type = PLAN_WORKFLOW, PlanOutcome
        else:
            run = ChatInput.model_validate_json(item.run_input)
            workflow_name, result_type = CHAT_WORKFLOW, ChatOutcome
        done = ItemResult(batch_id=inp.batch_id, idx=item.idx, status="completed",
                          api_key_id=inp.api_key_id)
        if inp.api_key_id is not None and inp.monthly_budget_usd is not None:
            estimate = (run.route.candidates[0].estimated_cost_usd if isinstance(run, ChatInput)
                        else run.primary.candidates[0].estimated_cost_usd * run.calls)
            try:
                done.hold = await workflow.execute_local_activity(
                    HOLD_ITEM, ItemHold(api_key_id=inp.api_key_id,
                                        budget_usd=inp.monthly_budget_usd,
                                        estimated_usd=estimate),
                    result_type=Hold, start_to_close_timeout=STORE, retry_policy=STORE_RETRY)
            except (ActivityError, ApplicationError) as err:  # the key's budget is spent
                cause = err.cause if isinstance(err, ActivityError) else err
                message = cause.message if isinstance(cause, ApplicationError) else str(err)
                return done.model_copy(update={"status": "failed", "error": {
                    "status_code": 403, "type": "budget_exceeded", "message": message}})
        try:
            out: BaseModel = await workflow.execute_child_workflow(
                workflow_name, run, id=run.request_id, result_type=result_type,
                search_attributes=_tags(run, inp.batch_id, item.custom_id),
                memo={"kind": "batch_item", "batch_id": inp.batch_id,
                      "custom_id": item.custom_id, "api_key_id": inp.api_key_id},
                execution_timeout=timedelta(hours=24))
        except ChildWorkflowError as err:
            if isinstance(err.cause, TemporalCancelled):
                return done.model_copy(update={"status": "cancelled"})
            error, cost = _failed(err)
            return done.model_copy(update={"status": "failed", "error": error,
                                           "cost_usd": cost})
        summary = getattr(out, "summary", None)
        cost = float(getattr(summary, "cost_usd", 0.0) or 0.0)
        return done.model_copy(update={"outcome": out.model_dump_json(), "cost_usd": cost})
