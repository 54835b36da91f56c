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
    """A request-log row and its reward rows, written durably.

    ``started_at`` is the gateway's wall clock when the request arrived. The runtime that
    writes the batch stamps it with its own wall clock (:meth:`at_wall_clock`) just before
    the write: inside a workflow the orchestration only has ``workflow.now()``, which does
    not advance while a local activity retries within one workflow task (a failed run of
    1.78 s was logged as 4 ms), so the run's latency is taken where a real clock may be read,
    the record activity (or the local recorder), and handed back to the orchestration.
    """

    record: RequestRecord
    rewards: list[RewardRecord] = Field(default_factory=list)
    started_at: datetime | None = None

    def at_wall_clock(self, now: datetime) -> RecordBatch:
        """The batch as written at ``now``: the row's latency is the wall time since the
        request arrived. Never less than the runtime's own measure (a worker whose clock
        lags the gateway's must not shorten a run), and rows are dated ``now``."""
        latency = self.record.latency_ms
        if self.started_at is not None:
            latency = max(latency, (now - self.started_at).total_seconds() * 1000)
        record = self.record.model_copy(update={"latency_ms": round(latency, 3),
                                                "created_at": now})
        rewards = [r.model_copy(update={"created_at": now}) for r in self.rewards]
        return RecordBatch(record=record, rewards=rewards, started_at=self.started_at)


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

    async def record(self, batch: RecordBatch) -> float:
        """Write the request log row and rewards, stamped with the wall clock
        (:meth:`RecordBatch.at_wall_clock`); return the run latency the row carries."""
        ...

    def now(self) -> datetime:
        """The runtime's clock (``workflow.now()`` inside a workflow)."""
        ...

    async def wait(self, seconds: float, reason: str) -> None:
        """Wait before trying again (an async run with a deadline, every candidate
        rate-limited or down): a durable timer inside a workflow, the run's status
        ``waiting`` meanwhile."""
        ...


class StreamingEffects(Effects, Protocol):
    """A runtime that can stream a model's answer (the local one today; the Temporal
    backend arrives with durable streams)."""

    async def open_stream(self, call: ModelCall) -> OpenedStream:
        """Open ``call`` as a stream and read its first chunk, retrying transient failures
        like ``call_model``; raise ModelCallFailed when the model fails for good."""
        ...
