"""One batch item on the workflow side: its budget hold, its run (as a child Chat/Plan
workflow, or inline in a BatchChunkWorkflow), its stored result. Used by workflows/batch.py
and workflows/batch_chunk.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import CancelledError as TemporalCancelled

with workflow.unsafe.imports_passed_through():
    from engine import attributes as keys
    from engine.names import CHAT_WORKFLOW, HOLD_ITEM, PLAN_WORKFLOW, STORE_ITEM
    from shared.errors import TokenHubError
    from shared.orchestration.batch import BatchItem, Hold, ItemHold, ItemResult, is_plan
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
    from workflows import attributes
    from workflows.effects import TemporalEffects

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


def parse(item: BatchItem) -> ChatInput | PlanInput:
    if is_plan(item.url):
        return PlanInput.model_validate_json(item.run_input)
    return ChatInput.model_validate_json(item.run_input)


async def hold(run: ChatInput | PlanInput, done: ItemResult, api_key_id: str | None,
               budget: float | None) -> ItemResult | None:
    """Hold the item's estimate on its key's budget (sets ``done.hold``); the failed item
    when the budget is spent, else None."""
    if api_key_id is None or budget is None:
        return None
    estimate = (run.route.candidates[0].estimated_cost_usd if isinstance(run, ChatInput)
                else run.primary.candidates[0].estimated_cost_usd * run.calls)
    try:
        done.hold = await workflow.execute_local_activity(
            HOLD_ITEM, ItemHold(api_key_id=api_key_id, budget_usd=budget,
                                estimated_usd=estimate),
            result_type=Hold, start_to_close_timeout=STORE, retry_policy=STORE_RETRY)
    except (ActivityError, ApplicationError) as err:  # the key's budget is spent
        cause = err.cause if isinstance(err, ActivityError) else err
        message = cause.message if isinstance(cause, ApplicationError) else str(err)
        return done.model_copy(update={"status": "failed", "error": {
            "status_code": 403, "type": "budget_exceeded", "message": message}})
    return None


async def store(res: ItemResult) -> None:
    await workflow.execute_local_activity(STORE_ITEM, res, start_to_close_timeout=STORE,
                                          retry_policy=STORE_RETRY)


def _completed(done: ItemResult, out: BaseModel) -> ItemResult:
    summary = getattr(out, "summary", None)
    cost = float(getattr(summary, "cost_usd", 0.0) or 0.0)
    return done.model_copy(update={"outcome": out.model_dump_json(), "cost_usd": cost})


async def run_child(batch_id: str, item: BatchItem, run: ChatInput | PlanInput,
                    done: ItemResult, api_key_id: str | None) -> ItemResult:
    """The item as its own child workflow: an ordinary Chat/Plan run."""
    plan = isinstance(run, PlanInput)
    result_type: type[ChatOutcome] | type[PlanOutcome] = PlanOutcome if plan else ChatOutcome
    try:
        out: BaseModel = await workflow.execute_child_workflow(
            PLAN_WORKFLOW if plan else CHAT_WORKFLOW, run, id=run.request_id,
            result_type=result_type, search_attributes=_tags(run, batch_id, item.custom_id),
            memo={"kind": "batch_item", "batch_id": batch_id, "custom_id": item.custom_id,
                  "api_key_id": api_key_id},
            execution_timeout=timedelta(hours=24))
    except ChildWorkflowError as err:
        if isinstance(err.cause, TemporalCancelled):
            return done.model_copy(update={"status": "cancelled"})
        error, cost = _failed(err)
        return done.model_copy(update={"status": "failed", "error": error, "cost_usd": cost})
    return _completed(done, out)


async def run_inline(run: ChatInput | PlanInput, done: ItemResult) -> ItemResult:
    """The item run inside the calling workflow (a chunk): the same orchestration, the same
    effects (activities) a Chat/Plan workflow uses, its record written the same way."""
    fx = TemporalEffects(run.retry)
    try:
        out: BaseModel = (await run_plan(run, fx) if isinstance(run, PlanInput)
                          else await run_chat(run, fx))
    except TokenHubError as err:
        cost = float(getattr(err.summary, "cost_usd", 0.0) or 0.0)
        return done.model_copy(update={"status": "failed", "cost_usd": cost, "error": {
            "status_code": err.status_code, "type": err.error_type, "message": err.message}})
    return _completed(done, out)
