"""Output shaping: strip <think> blocks, validate JSON output against a schema (jsonschema)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError

from shared.errors import BadRequest, OutputValidationFailed

_THINK = re.compile(r"<think>.*?</think>\s*", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"^\s*<think>.*\Z", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n?```", re.DOTALL)


def strip_think(text: str) -> str:
    """Remove ``<think>…</think>`` blocks; an unterminated leading block is all thinking."""
    text = _THINK.sub("", text)
    text = _OPEN_THINK.sub("", text)
    return text.strip()


def check_schema(schema: dict[str, Any]) -> None:
    """A bad schema is the client's error (400), not an output failure (422)."""
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise BadRequest(f"invalid output schema: {exc.message}") from None


def validate_json_output(text: str, schema: dict[str, Any] | None) -> Any:
    """Parse the model's output as JSON (bare or in a ```json fence) and validate it."""
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced and not candidate.startswith(("{", "[")):
        candidate = fenced.group(1).strip()
    try:
        value = json.loads(candidate)
    except ValueError as exc:
        raise OutputValidationFailed(f"model output is not valid JSON: {exc}") from None
    if schema is not None:
        try:
            jsonschema.validate(value, schema)
        except ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise OutputValidationFailed(
                f"model output failed the schema at {where}: {exc.message}") from None
    return value


_OPEN, _CLOSE = "<think>", "</think>"
# Case-insensitive as the regexes above match (re.IGNORECASE also folds e.g. "K" (Kelvin
# sign) to "k", and str.lower() may change a string's length): each tag, and each proper
# prefix of ``<think>``, as its own pattern.
_OPEN_RE = re.compile(re.escape(_OPEN), re.IGNORECASE)
_CLOSE_RE = re.compile(re.escape(_CLOSE), re.IGNORECASE)
_OPEN_PREFIXES = [re.compile(re.escape(_OPEN[:n]), re.IGNORECASE)
                  for n in range(len(_OPEN) + 1)]


def _is_open_prefix(text: str) -> bool:
    """Is ``text`` ``<think>`` or a prefix of it (case-insensitively)?"""
    return len(text) <= len(_OPEN) and bool(_OPEN_PREFIXES[len(text)].fullmatch(text))


def _held_prefix(buf: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``<think>``."""
    for n in range(min(len(buf), len(_OPEN) - 1), 0, -1):
        if _is_open_prefix(buf[-n:]):
            return n
    return 0


class ThinkStripper:
    """:func:`strip_think` for a stream: feed the text piece by piece, in any chunking;
    the concatenation of what :meth:`feed` and :meth:`finish` return equals
    ``strip_think`` of the whole text.

    Two stages, each a small state machine mirroring one step of ``strip_think``:

    1. blocks: outside a block, text passes except a held-back tail that may be the start
       of ``<think>``; inside one, text is buffered until ``</think>`` (then dropped with
       the whitespace after it) or the end (an unterminated block stays, as the regex
       leaves it, unless stage 2 drops it);
    2. the result's edges: leading whitespace is dropped, and if what follows is
       ``<think>`` (an unterminated leading block) nothing at all is output; trailing
       whitespace is held until something else follows it (``.strip()``).
    """

    def __init__(self) -> None:
        self._buf = ""  # stage 1: undecided text (a tag prefix, or an open block)
        self._in_block = False
        self._skip_ws = False  # after a block: drop whitespace (``</think>\s*``)
        self._lead = ""  # stage 2: the first non-whitespace characters, until decided
        self._started = False  # stage 2 past the leading check
        self._dead = False  # the result is empty (leading unterminated block)
        self._ws = ""  # stage 2: pending trailing whitespace

    def feed(self, text: str) -> str:
        return self._emit(self._blocks(text))

    def finish(self) -> str:
        rest, self._buf = self._buf, ""  # a tag prefix, or an unterminated block: literal
        out = self._emit(rest)
        if not self._started and not self._dead and self._lead:
            out += self._lead  # shorter than ``<think>``: it was not one
        self._lead, self._ws, self._started = "", "", True
        return out

    # -- stage 1: ``<think>…</think>\s*`` blocks ---------------------------------------
    def _blocks(self, text: str) -> str:
        buf = self._buf + text
        out: list[str] = []
        while buf:
            if self._skip_ws:
                stripped = buf.lstrip()
                if not stripped:
                    buf = ""
                    break
                buf, self._skip_ws = stripped, False
            if self._in_block:
                close = _CLOSE_RE.search(buf, len(_OPEN))
                if close is None:
                    break  # keep buffering the open block
                buf = buf[close.end():]
                self._in_block, self._skip_ws = False, True
                continue
            found = _OPEN_RE.search(buf)
            if found is None:
                keep = _held_prefix(buf)
                out.append(buf[:len(buf) - keep])
                buf = buf[len(buf) - keep:]
                break
            out.append(buf[:found.start()])
            buf = buf[found.start():]
            self._in_block = True
        self._buf = buf
        return "".join(out)

    # -- stage 2: leading unterminated block, and ``.strip()`` -------------------------
    def _emit(self, text: str) -> str:
        if self._dead or not text:
            return ""
        out: list[str] = []
        for ch in text:
            if not self._started:
                if not self._lead and ch.isspace():
                    continue
                self._lead += ch
                if _is_open_prefix(self._lead):
                    if len(self._lead) == len(_OPEN):
                        self._dead = True
                        return ""
                    continue
                self._started = True
                ch, self._lead = self._lead, ""
                out.append(ch.rstrip())
                self._ws = ch[len(ch.rstrip()):]
                continue
            if ch.isspace():
                self._ws += ch
            else:
                out.append(self._ws + ch)
                self._ws = ""
        return "".join(out)
