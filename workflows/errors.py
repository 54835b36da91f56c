"""Turn TokenHub errors into non-retryable workflow failures (and back, in the gateway)."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from shared.errors import TokenHubError


def to_application_error(err: TokenHubError) -> ApplicationError:
    """A failed run: the error's type/status/details travel to the gateway, never retried."""
    return ApplicationError(err.message, {"status": err.status_code, "details": err.details},
                            type=err.error_type, non_retryable=True)
