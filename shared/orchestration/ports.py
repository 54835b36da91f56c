"""The effects port: what the orchestration may ask of its runtime.

One orchestration, two runtimes. Inside a Temporal workflow the port is backed
by activities (``workflows/effects.py``); in the gateway's fallback it is backed
by direct calls (:mod:`shared.orchestration.local`). Both retry transient
failures from the same :class:`shared.orchestration.retry.RetrySpec`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from shared.contracts import Attempt, Completion, RequestRecord, RewardRecord
from shared.routing.types import ModelSpec


class ModelCall(BaseModel):
    """Call one model (the runtime retries transient failures on it)."""

    request_id: str
    model: ModelSpec
    messages: list[dict[str, Any]] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    step: str = "chat"  # readable label: chat, voter-2, critique-1, judge…


class ModelCallResult(BaseModel):
    completion: Completion
    attempt: Attempt
    cost_usd: float


class RecordBatch(BaseModel):
    """A request-log row and its reward rows, written durably."""

    record: RequestRecord
    rewards: list[RewardRecord] = Field(default_factory=list)


class ModelCallFailed(Exception):
    """The model failed for good (after transient retries); ``attempt`` says how."""

    def __init__(self, attempt: Attempt) -> None:
        super().__init__(attempt.message or attempt.outcome)
        self.attempt = attempt


class Effects(Protocol):
    async def call_model(self, call: ModelCall) -> ModelCallResult:
        """Call one model; raise ModelCallFailed when it fails for good."""
        ...

    async def record(self, batch: RecordBatch) -> None:
        """Write the request log row and rewards."""
        ...

    def now(self) -> datetime:
        """The runtime's clock (``workflow.now()`` inside a workflow)."""
        ...
