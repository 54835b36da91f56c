"""Temporal effects: the orchestration's port backed by activities.

Transient failures are retried by the activity RetryPolicy built from the one
RetrySpec; other classes are non-retryable and come back as ModelCallFailed,
so the failover decision stays in the shared orchestration.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelled

with workflow.unsafe.imports_passed_through():
    from engine.failures import attempt_from_failure
    from engine.names import CALL_MODEL, NON_RETRYABLE, RECORD_RUN
    from shared.contracts import Executor
    from shared.orchestration.ports import (
        ModelCall,
        ModelCallFailed,
        ModelCallResult,
        RecordBatch,
    )
    from shared.orchestration.progress import ProgressTracker
    from shared.orchestration.retry import RetrySpec
    from workflows import attributes

def retry_policy(spec: RetrySpec) -> RetryPolicy:
    """The activity RetryPolicy equivalent to the local path's retry loop."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_backoff_s),
        backoff_coefficient=spec.backoff_coefficient,
        maximum_interval=timedelta(seconds=spec.max_backoff_s),
        maximum_attempts=spec.max_tries_per_model,
        non_retryable_error_types=NON_RETRYABLE,
    )


class TemporalEffects:
    executor: Executor = "temporal"

    def __init__(self, retry: RetrySpec | None = None,
                 tracker: ProgressTracker | None = None) -> None:
        self._retry = retry or RetrySpec()
        self._local_calls = self._retry.local_activities
        self.tracker = tracker  # an async run's progress (query and events)

    def now(self) -> datetime:
        return workflow.now()

    async def wait(self, seconds: float, reason: str) -> None:
        """A durable timer; the run's status is ``waiting`` meanwhile (progress query,
        events, and the TokenHubStatus search attribute)."""
        if self.tracker is not None:
            self.tracker.waiting(seconds, reason)
        attributes.upsert_status("waiting")
        try:
            await workflow.sleep(timedelta(seconds=seconds), summary=f"waiting: {reason}"[:200])
        finally:
            attributes.upsert_status("running")
            if self.tracker is not None:
                self.tracker.resumed()

    async def call_model(self, call: ModelCall) -> ModelCallResult:
        tracker = self.tracker
        if tracker is None:
            return await self._call_model(call)
        tracker.started(call.step, call.model.id, call.model.provider_id)
        try:
            res = await self._call_model(call)
        except ModelCallFailed as failed:
            tracker.failed(failed.attempt)
            raise
        tracker.finished(res.attempt, res.cost_usd)
        return res

    async def _call_model(self, call: ModelCall) -> ModelCallResult:
        spec = self._retry
        timeout = timedelta(seconds=spec.attempt_timeout_s)
        try:
            result: ModelCallResult
            if self._local_calls:
                result = await workflow.execute_local_activity(
                    CALL_MODEL, call, result_type=ModelCallResult,
                    start_to_close_timeout=timeout, retry_policy=retry_policy(spec),
                    summary=f"{call.step}: {call.model.id}")
            else:
                result = await workflow.execute_activity(
                    CALL_MODEL, call, result_type=ModelCallResult,
                    start_to_close_timeout=timeout, retry_policy=retry_policy(spec),
                    heartbeat_timeout=timedelta(seconds=spec.heartbeat_timeout_s),
                    summary=f"{call.step}: {call.model.id}")
        except (ActivityError, ApplicationError) as err:
            if isinstance(err, ActivityError) and isinstance(err.cause, TemporalCancelled):
                raise asyncio.CancelledError() from None  # the run was cancelled: no failover
            raise ModelCallFailed(attempt_from_failure(call, err)) from None
        return result

    async def record(self, batch: RecordBatch) -> float:
        latency: float | None = await workflow.execute_local_activity(
            RECORD_RUN, batch, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=0, maximum_interval=timedelta(seconds=10)),
            result_type=float, summary="record request log")
        # None: a history recorded before the activity reported the latency
        return batch.record.latency_ms if latency is None else float(latency)
