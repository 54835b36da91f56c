"""TOKENHUB_LOG_FORMAT: text on a terminal, JSON otherwise; colour only as text on a
terminal; secrets masked in both formats."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from shared.config import Settings
from shared.security.redact import SecretRegistry, install_redaction
from shared.telemetry.logging import configure_logging, render_text, resolve_format

SECRET = "exact-runtime-secret-42"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back afterwards."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _log_to(stream: _Stream, monkeypatch: pytest.MonkeyPatch, fmt: str) -> str:
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("INFO", fmt=fmt, process="gateway")
    registry = SecretRegistry()
    registry.add(SECRET)
    install_redaction(registry)
    log = logging.getLogger("tokenhub.test.format")
    log.warning("calling with key sk-abcdef123456 and %s", SECRET,
                extra={"request_id": "req_abc"})
    try:
        raise ValueError(f"boom {SECRET}")
    except ValueError:
        log.exception("failed")
    return stream.getvalue()


def test_format_setting_defaults_to_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).log_format == "auto"  # type: ignore[call-arg]
    monkeypatch.setenv("TOKENHUB_LOG_FORMAT", "text")
    assert Settings(_env_file=None).log_format == "text"  # type: ignore[call-arg]


def test_auto_is_text_on_a_terminal_else_json() -> None:
    assert resolve_format("auto", _Stream(tty=True)) == "text"
    assert resolve_format("auto", _Stream(tty=False)) == "json"
    assert resolve_format("json", _Stream(tty=True)) == "json"
    assert resolve_format("text", _Stream(tty=False)) == "text"


@pytest.mark.usefixtures("root")
@pytest.mark.parametrize("fmt", ["auto", "json"])
def test_json_lines_without_colour_and_with_secrets_masked(
        monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    out = _log_to(_Stream(tty=fmt == "json"), monkeypatch, fmt)
    assert "\x1b" not in out
    assert SECRET not in out and "sk-abcdef123456" not in out
    first, second = (orjson.loads(line) for line in out.splitlines())
    assert first["proc"] == "gateway" and first["level"] == "warning"
    assert first["logger"] == "tokenhub.test.format" and first["request_id"] == "req_abc"
    assert first["msg"] == "calling with key *** and ***"
    assert second["msg"] == "failed" and "ValueError" in second["exc"]


@pytest.mark.usefixtures("root")
def test_text_on_a_terminal_is_one_coloured_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _log_to(_Stream(tty=True), monkeypatch, "auto")
    assert "\x1b[" in out
    assert SECRET not in out and "sk-abcdef123456" not in out
    assert "tokenhub.test.format: calling with key *** and *** request_id=req_abc" in out
    assert "gateway" in out.splitlines()[0]


@pytest.mark.usefixtures("root")
@pytest.mark.parametrize("tty, no_colour", [(False, None), (True, "1")])
def test_text_without_colour_off_a_terminal_or_with_no_color(
        monkeypatch: pytest.MonkeyPatch, tty: bool, no_colour: str | None) -> None:
    if no_colour:
        monkeypatch.setenv("NO_COLOR", no_colour)
    out = _log_to(_Stream(tty=tty), monkeypatch, "text")
    assert "\x1b" not in out
    assert SECRET not in out and "sk-abcdef123456" not in out
    line = out.splitlines()[0]
    assert " gateway  WARNING tokenhub.test.format: calling with key *** and *** " \
           "request_id=req_abc" in line
    assert not line.lstrip().startswith("{")


def test_render_text_fields() -> None:
    line = render_text({"ts": "2026-12-01T10:00:00.123+00:00", "proc": "worker",
                        "level": "error", "logger": "tokenhub.worker", "msg": "gone",
                        "request_id": "req_1", "attempt": 2, "exc": "Traceback..."})
    first, exc = line.split("\n")
    assert first.endswith(" worker   ERROR   tokenhub.worker: gone request_id=req_1 attempt=2")
    assert first[:12].count(":") == 2 and first[8] == "."  # HH:MM:SS.mmm
    assert exc == "Traceback..."
