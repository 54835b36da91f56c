"""Temporal effects: the orchestration's port backed by activities.

Transient failures are retried by the activity RetryPolicy built from the one
RetrySpec; other classes are non-retryable and come back as ModelCallFailed,
so the failover decision stays in the shared orchestration.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from shared.contracts import Attempt
    from shared.orchestration.ports import (
        ModelCall,
        ModelCallFailed,
        ModelCallResult,
        RecordBatch,
    )
    from shared.orchestration.retry import RetrySpec

CALL_MODEL = "call_model"
RECORD_RUN = "record_run"
NON_RETRYABLE = ["context_overflow", "rate_limited", "fatal"]


def retry_policy(spec: RetrySpec) -> RetryPolicy:
    """The activity RetryPolicy equivalent to the local path's retry loop."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=spec.initial_backoff_s),
        backoff_coefficient=spec.backoff_coefficient,
        maximum_interval=timedelta(seconds=spec.max_backoff_s),
        maximum_attempts=spec.max_tries_per_model,
        non_retryable_error_types=NON_RETRYABLE,
    )


def _attempt_from_failure(call: ModelCall, err: ActivityError | ApplicationError) -> Attempt:
    # a regular activity's failure arrives wrapped in an ActivityError; a local activity's
    # non-retryable or exhausted failure may arrive as the bare ApplicationError
    cause = err.cause if isinstance(err, ActivityError) else err
    details: dict[str, Any] = {}
    outcome = "transient"
    message = str(cause or err)
    if isinstance(cause, ApplicationError):
        outcome = cause.type or "transient"
        if cause.details and isinstance(cause.details[0], dict):
            details = cause.details[0]
        message = cause.message
    if outcome not in ("context_overflow", "rate_limited", "transient", "fatal"):
        outcome = "transient"
    return Attempt(model=call.model.id, provider=call.model.provider_id, outcome=outcome,
                   status=details.get("status"), latency_ms=details.get("latency_ms", 0.0),
                   tries=int(details.get("tries", 0)) or 1, message=message[:500],
                   retry_after=details.get("retry_after"), step=call.step)


class TemporalEffects:
    def __init__(self, retry: RetrySpec | None = None) -> None:
        self._retry = retry or RetrySpec()
        self._local_calls = self._retry.local_activities

    def now(self) -> datetime:
        return workflow.now()

    async def call_model(self, call: ModelCall) -> ModelCallResult:
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
            raise ModelCallFailed(_attempt_from_failure(call, err)) from None
        return result

    async def record(self, batch: RecordBatch) -> None:
        await workflow.execute_local_activity(
            RECORD_RUN, batch, start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_attempts=0, maximum_interval=timedelta(seconds=10)),
            summary="record request log")
