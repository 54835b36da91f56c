"""TokenHub's exception hierarchy.

Every error a client can see maps to one HTTP status and one ``type`` string of
the public error shape ``{"error": {"type", "message", "request_id"}}``::

    TokenHubError                       500 internal_error
    ├── BadRequest                      400 invalid_request
    │   ├── DirectiveError              400 invalid_directive
    │   └── ContextLengthExceeded       400 context_length_exceeded (too long for every model)
    ├── Unauthorized                    401 unauthorized
    ├── Forbidden                       403 forbidden
    │   └── BudgetExceeded              403 budget_exceeded
    ├── NotFound                        404 not_found
    ├── Conflict                        409 conflict
    ├── PayloadTooLarge                 413 payload_too_large
    ├── OutputValidationFailed          422 output_validation_failed
    ├── RangeNotSatisfiable             416 range_not_satisfiable (resume past a run's end)
    ├── RateLimited                     429 rate_limited        (retry_after seconds)
    ├── Cancelled                       499 cancelled           (a cancelled run)
    ├── AllProvidersFailed              502 all_providers_failed (attempts listed)
    ├── UpstreamFailed                  502 upstream_error (one admin call to a provider,
    │                                       e.g. model discovery; the provider's status)
    ├── NoEligibleModel                 503 no_eligible_model    (exclusion reasons)
    ├── ServiceUnavailable              503 service_unavailable
    │   └── VaultLocked                 503 vault_locked
    └── ConfigError                     (startup only) names the bad setting

    ProviderError                       one failed provider call, classified:
                                        context_overflow | rate_limited | transient | fatal

``ProviderError`` is not a client-facing error: the orchestration turns a run of
them into ``AllProvidersFailed`` once every candidate has been tried.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorClass = Literal["context_overflow", "rate_limited", "transient", "fatal"]
ERROR_CLASSES: tuple[ErrorClass, ...] = ("context_overflow", "rate_limited", "transient", "fatal")


class TokenHubError(Exception):
    """Base of every error TokenHub raises on purpose."""

    status_code: int = 500
    error_type: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        self.extra_headers: dict[str, str] = {}
        # the failed run's RunSummary (shared.orchestration.records), when a run failed:
        # the gateway's metrics and stats read it; it never reaches the client
        self.summary: Any = None

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers the response must carry."""
        return dict(self.extra_headers)


class BadRequest(TokenHubError):
    """The request body or a parameter is invalid."""

    status_code = 400
    error_type = "invalid_request"


class DirectiveError(BadRequest):
    """An in-band ``@@tokenhub`` directive has an unknown key or an invalid value."""

    error_type = "invalid_directive"


class ContextLengthExceeded(BadRequest):
    """The prompt is too long for every model of the catalog: no retry can succeed, so it
    is the client's error (OpenAI's ``context_length_exceeded``), not a 503."""

    error_type = "context_length_exceeded"


class Unauthorized(TokenHubError):
    """No credentials, or credentials that are not valid (unknown, revoked, expired)."""

    status_code = 401
    error_type = "unauthorized"


class Forbidden(TokenHubError):
    """Valid credentials without the right to do this (missing scope)."""

    status_code = 403
    error_type = "forbidden"


class BudgetExceeded(Forbidden):
    """The API key's monthly USD budget would be exceeded."""

    error_type = "budget_exceeded"


class NotFound(TokenHubError):
    """The named resource (model, run, key…) does not exist."""

    status_code = 404
    error_type = "not_found"


class Conflict(TokenHubError):
    """The resource already exists or is in a state that forbids the change."""

    status_code = 409
    error_type = "conflict"


class PayloadTooLarge(TokenHubError):
    """The request body exceeds ``TOKENHUB_MAX_BODY_BYTES``."""

    status_code = 413
    error_type = "payload_too_large"


class OutputValidationFailed(TokenHubError):
    """The model's output did not validate against the requested JSON schema."""

    status_code = 422
    error_type = "output_validation_failed"


class RateLimited(TokenHubError):
    """The client exceeded its rate limit; retry after ``retry_after`` seconds."""

    status_code = 429
    error_type = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {**self.extra_headers, "Retry-After": str(max(1, int(self.retry_after + 0.999)))}


class RangeNotSatisfiable(TokenHubError):
    """A resume offset past the end of a finished run's stream."""

    status_code = 416
    error_type = "range_not_satisfiable"


class Cancelled(TokenHubError):
    """The run was cancelled (by the cancel endpoint, or a client that asked for it)."""

    status_code = 499
    error_type = "cancelled"


class AllProvidersFailed(TokenHubError):
    """Every candidate model failed; ``details["attempts"]`` lists each attempt."""

    status_code = 502
    error_type = "all_providers_failed"


class UpstreamFailed(TokenHubError):
    """An admin operation's call to a provider failed or got an answer it cannot use
    (model discovery); ``details["provider_status"]`` is the provider's HTTP status."""

    status_code = 502
    error_type = "upstream_error"


class NoEligibleModel(TokenHubError):
    """No model is eligible for the request; ``details["excluded"]`` says why per model."""

    status_code = 503
    error_type = "no_eligible_model"


class ServiceUnavailable(TokenHubError):
    """A dependency TokenHub needs is not available."""

    status_code = 503
    error_type = "service_unavailable"


class VaultLocked(ServiceUnavailable):
    """The credential vault is locked, so vault-backed providers cannot be used."""

    error_type = "vault_locked"


class ConfigError(TokenHubError):
    """Bad configuration found at startup; the message names the setting."""

    error_type = "config_error"


class ProviderError(Exception):
    """One provider call failed; ``error_class`` drives the failover decision."""

    def __init__(
        self,
        message: str,
        *,
        error_class: ErrorClass,
        status: int | None = None,
        retry_after: float | None = None,
        provider_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class: ErrorClass = error_class
        self.status = status
        self.retry_after = retry_after
        self.provider_id = provider_id

    @property
    def retryable(self) -> bool:
        """Only transient failures are retried on the same model."""
        return self.error_class == "transient"

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.error_class}, status={self.status}, "
            f"retry_after={self.retry_after}, message={self.message!r})"
        )


def error_types() -> dict[str, type[TokenHubError]]:
    """Every TokenHubError class by its ``error_type`` (the most general class wins)."""
    out: dict[str, type[TokenHubError]] = {}
    stack: list[type[TokenHubError]] = [TokenHubError]
    while stack:
        cls = stack.pop()
        out.setdefault(cls.error_type, cls)
        stack.extend(cls.__subclasses__())
    return out


def rebuild_error(error_type: str, message: str,
                  details: dict[str, Any] | None = None) -> TokenHubError | None:
    """The TokenHubError a (type, message, details) triple stands for, as it was raised
    elsewhere (a workflow, another gateway process); None for an unknown type."""
    cls = error_types().get(error_type)
    if cls is None:
        return None
    err = TokenHubError.__new__(cls)
    TokenHubError.__init__(err, message, details=details)
    if isinstance(err, RateLimited):
        err.retry_after = float(err.details.get("retry_after", 1))
    return err
