"""The Temporal failure codec round-trips through Temporal's real failure converter."""

from __future__ import annotations

from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from engine.failures import attempt_failure, attempt_from_failure, run_error, run_failure
from engine.names import NON_RETRYABLE
from shared import errors
from shared.contracts import Attempt
from shared.errors import ProviderError
from shared.orchestration.ports import ModelCall
from shared.orchestration.records import RunSummary
from tests.factories import spec

CALL = ModelCall(request_id="r1", model=spec("m1", "p1"),
                 messages=[{"role": "user", "content": "x"}], step="voter-2")


async def _through_temporal(exc: BaseException) -> BaseException:
    """Encode ``exc`` to a Failure proto and decode it, as the SDK does across processes."""
    conv = pydantic_data_converter
    failure = Failure()
    await conv.encode_failure(exc, failure)
    return await conv.decode_failure(failure)


async def test_provider_failures_round_trip_for_every_class() -> None:
    for cls in errors.ERROR_CLASSES:
        err = ProviderError(f"{cls} happened", error_class=cls, status=429,
                            retry_after=3.5 if cls == "rate_limited" else None)
        decoded = await _through_temporal(attempt_failure(err, tries=2, latency_ms=12.3456))
        assert isinstance(decoded, ApplicationError)
        assert decoded.non_retryable == (cls in NON_RETRYABLE)
        wrapped = ActivityError("activity failed", scheduled_event_id=1, started_event_id=2,
                                identity="w", activity_type="call_model", activity_id="1",
                                retry_state=RetryState.NON_RETRYABLE_FAILURE)
        wrapped.__cause__ = decoded
        for as_seen in (decoded, wrapped):  # bare (local activity) or wrapped (activity)
            assert attempt_from_failure(CALL, as_seen) == Attempt(
                model="m1", provider="p1", outcome=cls, status=429, latency_ms=12.346,
                tries=2, message=f"{cls} happened",
                retry_after=3.5 if cls == "rate_limited" else None, step="voter-2")


async def test_an_unclassified_failure_counts_as_transient() -> None:
    timeout = ApplicationError("boom", type="SomethingElse")
    attempt = attempt_from_failure(CALL, await _through_temporal(timeout))  # type: ignore[arg-type]
    assert (attempt.outcome, attempt.tries, attempt.message) == ("transient", 1, "boom")


async def test_run_failures_round_trip_with_their_summary() -> None:
    summary = RunSummary(request_id="r1", kind="chat", mode="normal", executor="temporal",
                         status="error", http_status=422,
                         error_class="output_validation_failed", model="m1", provider="p1",
                         attempts=[Attempt(model="m1", provider="p1", outcome="ok",
                                           cost_usd=0.0012, input_tokens=10,
                                           output_tokens=20)])
    cases: list[errors.TokenHubError] = [
        errors.OutputValidationFailed("not JSON", details={"errors": ["x"]}),
        errors.AllProvidersFailed("all failed", details={"attempts": []}),
        errors.RateLimited("slow down", retry_after=4),
        errors.NoEligibleModel("none", details={"excluded": {"m1": "budget"}}),
    ]
    for original in cases:
        original.summary = summary
        decoded = await _through_temporal(run_failure(original))
        failure = WorkflowFailureError(cause=decoded)
        back = run_error(failure)
        assert type(back) is type(original)
        assert (back.status_code, back.error_type, back.message, back.details) == (
            original.status_code, original.error_type, original.message, original.details)
        assert back.summary == summary and back.summary.cost_usd == 0.0012
        if isinstance(original, errors.RateLimited):
            assert isinstance(back, errors.RateLimited) and back.retry_after == 4


async def test_a_workflow_that_failed_otherwise_is_a_502() -> None:
    back = run_error(WorkflowFailureError(cause=ApplicationError("panic", type="KeyError")))
    assert isinstance(back, errors.AllProvidersFailed) and back.summary is None
