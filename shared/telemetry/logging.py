"""Structured logs with secrets kept out: JSON lines, or one readable line per record.

``TOKENHUB_LOG_FORMAT``: ``json`` (one object per line), ``text`` (time, process, level,
logger, message, request id and other fields) or ``auto`` (text when stderr is a
terminal, else JSON). Colour only in text on a terminal (and not with ``NO_COLOR``).
Secrets are masked where records are made (shared/security/redact.py), before any
formatter sees them.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from shared.security.redact import redact, route_uncaught_through_logging

LogFormat = Literal["auto", "json", "text"]

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",  # uvicorn's ANSI copy of the message (not redacted; never shown)
    "temporal_log",  # the Temporal SDK core's raw entry; its fields are in the message
}
_CORE = ("ts", "proc", "level", "logger", "msg", "exc")

_LEVEL_COLOURS = {"debug": "2", "info": "32", "warning": "33", "error": "31", "critical": "1;31"}
_PROC_COLOURS = {"gateway": "36", "worker": "35", "temporal": "34", "dev": "1"}


def resolve_format(fmt: str, stream: TextIO | None = None) -> Literal["json", "text"]:
    """``auto`` → text on a terminal, JSON otherwise."""
    if fmt == "json":
        return "json"
    if fmt == "text":
        return "text"
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def use_colour(fmt: str, stream: TextIO | None = None) -> bool:
    """ANSI colour only for text on a terminal (and never with ``NO_COLOR`` set)."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return (fmt == "text" and isatty is not None and bool(isatty())
            and not os.environ.get("NO_COLOR"))


def record_fields(record: logging.LogRecord, process: str | None = None) -> dict[str, Any]:
    """The fields of a record, as the JSON format writes them."""
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
    }
    if process:
        out["proc"] = process
    out |= {"level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage()}
    for key, value in record.__dict__.items():
        if key not in _RESERVED and not key.startswith("_"):
            out[key] = value
    return out


def _paint(text: str, code: str | None, colour: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _local_time(ts: object) -> str:
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return ts
    elif isinstance(ts, int | float):
        moment = datetime.fromtimestamp(ts, UTC)
    else:
        moment = datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def render_text(fields: dict[str, Any], *, colour: bool = False) -> str:
    """One readable line: ``time process LEVEL logger: message request_id=… key=…``
    (a traceback, if any, on the lines after)."""
    level = str(fields.get("level", "info")).lower()
    proc = str(fields.get("proc", ""))
    parts = [_local_time(fields.get("ts"))]
    if proc:
        parts.append(_paint(f"{proc:<8}", _PROC_COLOURS.get(proc), colour))
    parts.append(_paint(f"{level.upper():<7}", _LEVEL_COLOURS.get(level), colour))
    logger = fields.get("logger")
    msg = str(fields.get("msg", ""))
    parts.append(f"{logger}: {msg}" if logger else msg)
    rid = fields.get("request_id")
    if rid:
        parts.append(f"request_id={rid}")
    for key, value in fields.items():
        if key not in _CORE and key != "request_id":
            parts.append(f"{key}={value}")
    line = " ".join(parts)
    exc = fields.get("exc")
    return f"{line}\n{exc}" if exc else line


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str | None = None) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out = record_fields(record, self.process)
        if record.exc_text:  # masked when the record was made (shared/security/redact.py)
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # extra fields are set after the record factory ran: mask the line as written
        return redact(orjson.dumps(out, default=str).decode())


class TextFormatter(logging.Formatter):
    def __init__(self, process: str | None = None, *, colour: bool = False) -> None:
        super().__init__()
        self.process = process
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        out = record_fields(record, self.process)
        if record.exc_text:  # masked when the record was made (shared/security/redact.py)
            out["exc"] = record.exc_text
        elif record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # extra fields are set after the record factory ran: mask the line as written
        return redact(render_text(out, colour=self.colour))


def configure_logging(level: str = "INFO", *, filters: list[logging.Filter] | None = None,
                      fmt: str = "auto", process: str | None = None) -> None:
    """Install the formatter ``fmt`` names on the root logger (idempotent); ``process``
    (gateway, worker, …) tags every line."""
    stream = sys.stderr
    handler = logging.StreamHandler(stream)
    formatter: logging.Formatter
    if resolve_format(fmt, stream) == "text":
        formatter = TextFormatter(process, colour=use_colour("text", stream))
    else:
        formatter = JsonFormatter(process)
    handler.setFormatter(formatter)
    for f in filters or []:
        handler.addFilter(f)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    route_uncaught_through_logging()
