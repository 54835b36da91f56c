"""Keep secrets out of logs, errors and stored rows."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable
from typing import Any

MASK = "***"
_PATTERNS = [
    re.compile(r"thk_[A-Za-z0-9_\-]{8,}"),  # our client keys
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{6,}"),  # Anthropic
    re.compile(r"sk-[A-Za-z0-9_\-]{6,}"),  # OpenAI-style
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{6,}"),
    re.compile(r"(?i)((?:authorization|x-api-key|api[_-]?key|password|token)"
               r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
]
SECRET_HEADERS = {"authorization", "x-api-key", "proxy-authorization", "cookie"}


class SecretRegistry:
    """Exact secret strings known at runtime (admin token, provider keys, passwords)."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for s in sorted(self._secrets, key=len, reverse=True):
            if s in text:
                text = text.replace(s, MASK)
        return redact_text(text)


def redact_text(text: str) -> str:
    for pat in _PATTERNS:
        text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


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
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = self.registry.redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = self.registry.redact(record.exc_text)
        return True


class _RedactingFactory:
    """A LogRecord factory that masks secrets as records are created, so every handler
    (ours, uvicorn's, a test's capture) only ever sees redacted text."""

    def __init__(self, base: Callable[..., logging.LogRecord]) -> None:
        self.base = base
        self.registries: weakref.WeakSet[SecretRegistry] = weakref.WeakSet()

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.base(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # formatters use a record's exc_text when set: the traceback, masked, once
            record.exc_text = self._redact(_EXC_FORMATTER.formatException(record.exc_info))
        return record

    def _redact(self, text: str) -> str:
        text = redact_text(text)
        for reg in list(self.registries):
            text = reg.redact(text)
        return text


_EXC_FORMATTER = logging.Formatter()


def install_redaction(registry: SecretRegistry) -> None:
    """Redact every log record of this process with ``registry`` (idempotent)."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        factory = _RedactingFactory(factory)
        logging.setLogRecordFactory(factory)
    factory.registries.add(registry)
