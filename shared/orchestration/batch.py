"""A batch's run on the workflow engine: the types its workflow and activities share.

A batch is one ``BatchWorkflow`` (workflow id = batch id) that reads its pending items
from the store a page at a time and runs each as a child workflow: an ordinary
ChatWorkflow / PlanWorkflow (id ``<batch id>-<line>``, search attributes
``TokenHubBatchId`` and ``TokenHubCustomId``, so every item is in the Temporal UI), at
most ``max_concurrency`` at once. Each item's result is stored as it completes
(``shared/store/batches.py``); the workflow continues as new every ``items_per_run``
items, so its history stays small however large the batch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

ItemStatus = Literal["completed", "failed", "cancelled"]
PAGE = 100  # items read per store round trip


class BatchInput(BaseModel):
    batch_id: str
    total: int
    api_key_id: str | None = None
    monthly_budget_usd: float | None = None  # the key's: each item is held and charged
    max_concurrency: int = 8
    items_per_run: int = 2000  # then continue-as-new
    # 1: each item its own child Chat/Plan workflow; n > 1: items run n to a child
    # BatchChunkWorkflow (findable by TokenHubCustomIds), cheaper per item (bench/batches.py)
    group_size: int = 1
    after: int = -1  # the last line handled by the runs before this one
    completed: int = 0
    failed: int = 0  # includes the lines that failed validation
    cost_usd: float = 0.0
    started: bool = False  # the batch was marked in_progress


class BatchItem(BaseModel):
    idx: int
    custom_id: str | None = None
    url: str | None = None
    run_input: str  # the prepared ChatInput / PlanInput, JSON


class ChunkInput(BaseModel):
    """A group of a batch's items, run inside one BatchChunkWorkflow."""

    batch_id: str
    items: list[BatchItem]
    api_key_id: str | None = None
    monthly_budget_usd: float | None = None
    max_concurrency: int = 8


class ChunkResult(BaseModel):
    completed: int = 0
    failed: int = 0
    cost_usd: float = 0.0


class ItemsPage(BaseModel):
    batch_id: str
    after: int
    limit: int


class ItemHold(BaseModel):
    """Hold an item's estimated cost on its API key's monthly budget before it runs."""

    api_key_id: str
    budget_usd: float | None = None
    estimated_usd: float = 0.0


class Hold(BaseModel):
    id: str | None = None  # None: the key has no budget (spend is still recorded)
    month: str


class ItemResult(BaseModel):
    batch_id: str
    idx: int
    status: ItemStatus
    outcome: str | None = None  # the ChatOutcome / PlanOutcome, JSON
    error: dict[str, Any] | None = None  # {"status_code", "type", "message"}
    cost_usd: float = 0.0
    api_key_id: str | None = None  # charged ``cost_usd`` when the result is stored
    hold: Hold | None = None


class BatchStatusChange(BaseModel):
    batch_id: str
    status: str
    cancel_pending: bool = False  # mark every item not run ``cancelled``


class BatchProgress(BaseModel):
    """The batch workflow's ``progress`` query."""

    total: int
    completed: int = 0
    failed: int = 0
    running: int = 0
    cost_usd: float = 0.0
    status: str = "in_progress"


def is_plan(url: str | None) -> bool:
    return url == "/v1/plan"
