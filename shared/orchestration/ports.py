"""The effects port: what the orchestration may ask of its runtime.

One orchestration, two runtimes. Inside a Temporal workflow the port is backed
by activities (``workflows/effects.py``); in the gateway's fallback it is backed
by direct calls (:mod:`shared.orchestration.local`). Both retry transient
failures from the same :class:`shared.orchestration.retry.RetrySpec`.
Records are built once, from a run summary (:mod:`shared.orchestration.records`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from shared.contracts import Attempt, Completion, Executor, RequestRecord, RewardRecord, StreamChunk
from shared.routing.types import ModelSpec


class ModelCall(BaseModel):
    """Call one model (the runtime retries transient failures on it)."""

    request_id: str
    model: ModelSpec
    messages: list[dict[str, Any]] = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)
    step: str = "chat"  # readable label: chat, voter-2, critique-1, judge…
    # the time left in the policy's latency budget when the call was made: the provider
    # call's timeout is the smaller of this and the configured one (None: configured)
    timeout_s: float | None = None


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


@dataclass
class OpenedStream:
    """A model's stream that has produced its first chunk (failover is over for it)."""

    first: StreamChunk
    rest: AsyncIterator[StreamChunk]
    tries: int = 1

    async def aclose(self) -> None:
        aclose = getattr(self.rest, "aclose", None)
        if aclose is not None:
            await aclose()


class Effects(Protocol):
    @property
    def executor(self) -> Executor:
        """Which runtime this is: stamped on every record it writes."""
        ...

    async def call_model(self, call: ModelCall) -> ModelCallResult:
        """Call one model; raise ModelCallFailed when it fails for good."""
        ...

    async def record(self, batch: RecordBatch) -> None:
        """Write the request log row and rewards."""
        ...

    def now(self) -> datetime:
        """The runtime's clock (``workflow.now()`` inside a workflow)."""
        ...


class StreamingEffects(Effects, Protocol):
    """A runtime that can stream a model's answer (the local one today; the Temporal
    backend arrives with durable streams)."""

    async def open_stream(self, call: ModelCall) -> OpenedStream:
        """Open ``call`` as a stream and read its first chunk, retrying transient failures
        like ``call_model``; raise ModelCallFailed when the model fails for good."""
        ...
