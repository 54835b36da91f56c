"""The Temporal failure codec: how TokenHub's errors cross Temporal, both ways.

Two kinds of failure travel, each encoded in one place and decoded in one place:

- **a provider attempt** that failed (the activity, ``activities/provider.py``, encodes
  it with :func:`attempt_failure`; the workflow's effects decode it with
  :func:`attempt_from_failure` into an :class:`~shared.contracts.Attempt`). The
  ApplicationError's ``type`` is the error class, so the activity RetryPolicy can list
  the non-retryable ones (``engine.names.NON_RETRYABLE``).
- **a failed run** (the workflow encodes its TokenHubError with :func:`run_failure`; the
  gateway decodes the WorkflowFailureError with :func:`run_error`): same status, type,
  message and details, and the run's summary for the gateway's metrics.

Details travel as typed models (dumped to JSON by the payload converter, validated
back here), never as ad-hoc dicts read field by field at the call sites.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from shared import errors
from shared.contracts import Attempt
from shared.errors import ERROR_CLASSES, ProviderError, TokenHubError, rebuild_error
from shared.orchestration.ports import ModelCall
from shared.orchestration.records import RunSummary
from shared.security.redact import redact

MESSAGE_LIMIT = 500


class AttemptFailure(BaseModel):
    """What a failed provider attempt reports besides its class and message."""

    status: int | None = None
    retry_after: float | None = None
    tries: int = 1
    latency_ms: float = 0.0
    input_tokens: int = 0  # a stream cut mid-answer: what it produced (charged)
    output_tokens: int = 0


class RunFailure(BaseModel):
    """What a failed run reports besides its type and message."""

    status: int = 500
    details: dict[str, Any] = {}
    summary: RunSummary | None = None


# -- provider attempts: activity → workflow ----------------------------------------------

def attempt_failure(err: ProviderError, *, tries: int, latency_ms: float,
                    produced: tuple[int, int] | None = None) -> ApplicationError:
    """A classified provider failure as the activity raises it (only transient retries).

    ``produced`` (input, output tokens): a stream that failed after its first delta; it is
    never retried on the same model (the run continues the answer on the next one)."""
    info = AttemptFailure(status=err.status, retry_after=err.retry_after, tries=tries,
                          latency_ms=round(latency_ms, 3))
    if produced is not None:
        info.input_tokens, info.output_tokens = produced
    return ApplicationError(redact(err.message)[:MESSAGE_LIMIT], info.model_dump(),
                            type=err.error_class,
                            non_retryable=not err.retryable or produced is not None)


def _first_detail(err: ApplicationError) -> Any:
    return err.details[0] if err.details else None


def attempt_from_failure(call: ModelCall, err: ActivityError | ApplicationError) -> Attempt:
    """The Attempt a failed model call stands for, as the workflow sees the failure.

    A regular activity's failure arrives wrapped in an ActivityError; a local activity's
    non-retryable or exhausted failure may arrive as the bare ApplicationError. Anything
    unclassified (a timeout, a crash in the activity) counts as transient.
    """
    cause = err.cause if isinstance(err, ActivityError) else err
    outcome, message, info = "transient", str(cause or err), AttemptFailure()
    if isinstance(cause, ApplicationError):
        outcome = cause.type or "transient"
        message = cause.message
        try:
            info = AttemptFailure.model_validate(_first_detail(cause) or {})
        except ValidationError:
            pass
    if outcome not in ERROR_CLASSES:
        outcome = "transient"
    return Attempt(model=call.model.id, provider=call.model.provider_id,
                   outcome=outcome,
                   status=info.status, latency_ms=info.latency_ms, tries=max(info.tries, 1),
                   message=redact(message)[:MESSAGE_LIMIT], retry_after=info.retry_after,
                   input_tokens=info.input_tokens, output_tokens=info.output_tokens,
                   step=call.step)


# -- runs: workflow → gateway --------------------------------------------------------------

def run_failure(err: TokenHubError) -> ApplicationError:
    """A failed run, never retried: its type, status, details and summary travel."""
    summary = err.summary if isinstance(err.summary, RunSummary) else None
    info = RunFailure(status=err.status_code, details=err.details, summary=summary)
    return ApplicationError(redact(err.message), info.model_dump(mode="json"),
                            type=err.error_type, non_retryable=True)


def run_error(failure: WorkflowFailureError) -> TokenHubError:
    """The TokenHubError a workflow failed with (a 502 if it failed some other way)."""
    cause = failure.cause
    if isinstance(cause, ApplicationError) and cause.type:
        try:
            info = RunFailure.model_validate(_first_detail(cause) or {})
        except ValidationError:
            info = RunFailure()
        err = rebuild_error(cause.type, cause.message, info.details)
        if err is not None:
            err.summary = info.summary
            return err
    return errors.AllProvidersFailed(f"workflow failed: {cause or failure}")
