"""Names that gateway, worker, workflows and activities must agree on (declared once)."""

from __future__ import annotations

from typing import Final

from shared.errors import ERROR_CLASSES

CHAT_WORKFLOW: Final = "ChatWorkflow"
PLAN_WORKFLOW: Final = "PlanWorkflow"
CALL_MODEL: Final = "call_model"
RECORD_RUN: Final = "record_run"
STREAM_MODEL: Final = "stream_model"  # a durable stream's provider call
STREAM_TOPIC: Final = "answer"  # the Workflow Stream topic of a stream run's events
PROGRESS_TOPIC: Final = "progress"  # the Workflow Stream topic of an async run's progress
PROGRESS_QUERY: Final = "progress"  # a run's progress (shared/orchestration/progress.py)
BATCH_WORKFLOW: Final = "BatchWorkflow"
BATCH_CHUNK_WORKFLOW: Final = "BatchChunkWorkflow"  # a group of a batch's items
BATCH_ITEMS: Final = "batch_items"  # a page of a batch's pending items
STORE_ITEM: Final = "store_batch_item"  # one item's result
BATCH_STATUS: Final = "batch_status"  # move a batch's status
HOLD_ITEM: Final = "hold_batch_item"  # an item's budget hold
SETTLE_CHARGE: Final = "settle_charge"  # an async run's budget hold, settled by the run

# Provider error classes the activity RetryPolicy must not retry (only "transient" is).
NON_RETRYABLE: Final = [c for c in ERROR_CLASSES if c != "transient"]
