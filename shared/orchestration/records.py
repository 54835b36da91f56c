"""One run summary, one builder: the request-log row and the reward rows of every run.

Chat, plan and stream runs all end by building a :class:`RunSummary` (here, in the
orchestration, on whichever runtime ran it) and writing :func:`record_batch` of it. The
gateway feeds the same summary to its metrics and routing stats
(``Metrics.observe_run``); nothing else builds a row, a reward or a run metric.

Money and tokens are summed over every attempt that the provider billed (an ``ok``
attempt), so a run that failed after a successful call (its output failed the schema,
a later plan step failed) is still charged and logged for what it cost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from shared.contracts import Attempt, Executor, RequestRecord, RewardRecord
from shared.errors import TokenHubError
from shared.orchestration.ports import Effects, RecordBatch
from shared.routing.thompson import reward

RequestKind = Literal["chat", "plan", "completions", "messages", "stream", "embeddings",
                      "cache"]
SizeBucket = Literal["small", "medium", "large"]


class RunSummary(BaseModel):
    """What one run did, whatever its path and outcome."""

    request_id: str
    kind: RequestKind
    mode: str | None = None
    executor: Executor = "local"
    status: Literal["ok", "error"] = "ok"
    http_status: int = 200
    error_class: str | None = None
    model: str | None = None  # the model that answered (or, on failure, was tried last)
    provider: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    latency_ms: float = 0.0  # the run's wall clock since the gateway received it
    api_key_id: str | None = None
    size_bucket: SizeBucket = "small"
    budget_ms: int = 20000  # the policy's latency budget (reward formula)
    # set by the gateway on a repeat of a client request id answered with the first run's
    # result: not charged, counted or observed again
    replayed: bool = False

    @property
    def cost_usd(self) -> float:
        return round(sum(a.cost_usd for a in self.attempts), 10)

    @property
    def input_tokens(self) -> int:
        return sum(a.input_tokens for a in self.attempts)

    @property
    def output_tokens(self) -> int:
        return sum(a.output_tokens for a in self.attempts)

    @property
    def failed_over(self) -> bool:
        """Served, after at least one failed attempt (the failover metric)."""
        return self.status == "ok" and any(a.outcome != "ok" for a in self.attempts)


def rewards_for(summary: RunSummary, now: datetime) -> list[RewardRecord]:
    """One reward row per attempted model: 0 on failure, SPEC §4 formula on success."""
    return [
        RewardRecord(
            request_id=summary.request_id, created_at=now, model=a.model,
            size_bucket=summary.size_bucket, success=a.outcome == "ok", cost_usd=a.cost_usd,
            latency_ms=a.latency_ms,
            reward=reward(a.outcome == "ok", a.cost_usd, a.latency_ms, summary.budget_ms))
        for a in summary.attempts
    ]


def record_batch(summary: RunSummary, now: datetime, *, request_body: str | None = None,
                 started_at: datetime | None = None) -> RecordBatch:
    """The request-log row and reward rows of a run (the only place they are built)."""
    s = summary
    row = RequestRecord(
        request_id=s.request_id, created_at=now, kind=s.kind, mode=s.mode, model=s.model,
        provider=s.provider, input_tokens=s.input_tokens, output_tokens=s.output_tokens,
        cost_usd=s.cost_usd, latency_ms=round(s.latency_ms, 3), status=s.status,
        http_status=s.http_status, error_class=s.error_class, executor=s.executor,
        api_key_id=s.api_key_id, attempts=s.attempts, request_body=request_body,
        size_bucket=s.size_bucket)
    return RecordBatch(record=row, rewards=rewards_for(s, now), started_at=started_at)


async def write_record(fx: Effects, summary: RunSummary, *, started_at: datetime | None,
                       request_body: str | None) -> RunSummary:
    """Write the run's record; return its summary with the latency the row carries (the
    wall clock since ``started_at``, read by the recorder: see RecordBatch)."""
    latency = await fx.record(record_batch(summary, fx.now(), request_body=request_body,
                                           started_at=started_at))
    return summary.model_copy(update={"latency_ms": latency})


def summarize(*, request_id: str, kind: RequestKind, mode: str | None, executor: Executor,
              attempts: list[Attempt], latency_ms: float, api_key_id: str | None,
              size_bucket: SizeBucket, budget_ms: int,
              error: TokenHubError | None = None) -> RunSummary:
    """The summary of a run that ended (``error`` set when it failed)."""
    answered = next((a for a in attempts if a.outcome == "ok"), None)
    named = answered or (attempts[-1] if attempts else None)
    error_class = None
    if error is not None:
        last = attempts[-1] if attempts else None
        error_class = last.outcome if last is not None and last.outcome != "ok" \
            else error.error_type
    return RunSummary(
        request_id=request_id, kind=kind, mode=mode, executor=executor,
        status="error" if error is not None else "ok",
        http_status=error.status_code if error is not None else 200, error_class=error_class,
        model=named.model if named else None, provider=named.provider if named else None,
        attempts=list(attempts), latency_ms=latency_ms, api_key_id=api_key_id,
        size_bucket=size_bucket, budget_ms=budget_ms)
