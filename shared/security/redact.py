"""Keep secrets out of logs, errors, responses and stored rows.

Two layers, applied together by :func:`redact`:

- the **process's live secrets**, exact strings: every :class:`SecretRegistry` passed to
  :func:`install_redaction` (the gateway's and the worker's: admin token, API-key pepper,
  vault password, provider keys from the environment, the file and the vault, client
  tokens as they are issued). Process-wide on purpose: the provider adapters in
  ``shared/`` redact upstream error text at the source without being handed a registry;
- **token shapes**, for secrets this process never saw (an upstream echoing some other
  key): ``thk_…``, ``sk-…``/``sk-ant-…``, ``Bearer …``, AWS access key ids, Google API
  keys, GitHub and Slack tokens, JWTs, and ``key=value`` / ``"key": "value"`` pairs whose
  key says authorization, api key, secret, password or token.

Where it runs: upstream text as ``ProviderError`` messages are built
(shared/providers/http.py and the adapters), again where an ``Attempt`` message is
made (shared/orchestration/calls.py, engine/failures.py), stored request bodies, and
every log record as it is created: message, arguments and the formatted traceback
(``exc_info`` is formatted, redacted into ``exc_text`` and dropped, so no handler can
format the raw exception again). ``configure_logging`` also routes uncaught exceptions
(``sys.excepthook``, ``threading.excepthook``) through logging, so they are redacted too.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

MASK = "***"
_PATTERNS = [
    re.compile(r"thk_[A-Za-z0-9_\-]{8,}"),  # our client keys
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}"),  # Anthropic
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),  # OpenAI-style
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),  # AWS access key id
    re.compile(r"AIza[A-Za-z0-9_\-]{30,}"),  # Google API key
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),  # Slack
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"),  # JWT
    re.compile(r"(?i)((?:bearer|basic)\s+)[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(r"(?i)((?:authorization|x-api-key|api[_-]?key|secret(?:[_-]?access)?[_-]?key"
               r"|client[_-]?secret|password|passwd|token)[\"']?\s*[:=]\s*[\"']?"
               r"(?:(?:bearer|basic)\s+)?)[^\s\"',}]{4,}"),
]
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie"}


class SecretRegistry:
    """Exact secret strings known at runtime (admin token, provider keys, passwords)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:
            self._secrets.add(secret)

    def redact_exact(self, text: str) -> str:
        """Mask this registry's secrets only."""
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, MASK)
        return text

    def redact(self, text: str) -> str:
        return redact_text(self.redact_exact(text))


def redact_text(text: str) -> str:
    """Mask token shapes (not the process's exact secrets: see :func:`redact`)."""
    for pat in _PATTERNS:
        text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


_REGISTRIES: weakref.WeakSet[SecretRegistry] = weakref.WeakSet()


def redact(text: str) -> str:
    """``text`` with every live secret of this process and every token shape masked."""
    for reg in list(_REGISTRIES):
        text = reg.redact_exact(text)
    return redact_text(text)


def redact_value(value: Any) -> Any:
    """Redact strings inside dicts/lists; drop values of secret-looking keys."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: (MASK if any(w in str(k).lower() for w in
                                ("key", "secret", "password", "token", "authorization"))
                    and v else redact_value(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    """Rewrites every record's message (args merged) with secrets masked."""

    def __init__(self, registry: SecretRegistry | None = None) -> None:
        super().__init__()
        self.registry = registry or SecretRegistry()

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record, lambda text: redact(self.registry.redact(text)))
        return True


def _redact_record(record: logging.LogRecord, scrub: Callable[[str], str]) -> None:
    """Mask secrets in a record's message (args merged only when something was masked,
    so formatters reading ``args`` keep working) and traceback (formatted, masked, and
    ``exc_info`` dropped, so no handler can format the raw exception again)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = str(record.msg)
    redacted = scrub(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and record.exc_info != (None, None, None):
        record.exc_text = scrub(_FORMATTER.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


class _RedactingFactory:
    """A LogRecord factory that masks secrets as records are created, so every handler
    (ours, uvicorn's, a test's capture) only ever sees redacted text, tracebacks included."""

    def __init__(self, base: Callable[..., logging.LogRecord]) -> None:
        self.base = base

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        _redact_record(record, redact)
        return record


_FORMATTER = logging.Formatter()


def install_redaction(registry: SecretRegistry) -> None:
    """Redact every log record of this process, and every :func:`redact` call, with
    ``registry`` too (idempotent; registries are held weakly)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))
    _REGISTRIES.add(registry)


_uncaught = logging.getLogger("tokenhub.uncaught")


def _excepthook(kind: type[BaseException], exc: BaseException,
                tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    _uncaught.critical("uncaught exception", exc_info=(kind, exc, tb))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    _uncaught.error("uncaught exception in thread %s", name,
                    exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def route_uncaught_through_logging() -> None:
    """Uncaught exceptions (main thread, other threads) are logged, hence redacted,
    instead of printed raw to stderr. For process entrypoints (``configure_logging``)."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
