"""In-band directives: ``@@tokenhub key=value …`` lines and ``@@tokenhub`` … ``@@end`` blocks.

Directives are parsed from every message and stripped before any provider sees
them; the last directive wins. A message whose whole text was directives keeps
an empty string (roles and order are preserved). An invalid value is a
DirectiveError naming the key and the allowed range.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from shared.contracts import MODES, Message
from shared.errors import DirectiveError
from shared.routing.policy import DirectiveOverrides

_MARK = "@@tokenhub"
_END = "@@end"
_LINE = re.compile(r"\s*@@tokenhub(?:\s+(?P<args>.*))?\s*$")  # matched on one line
# str.splitlines' line boundaries: a directive is a line of its own in that sense
_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile("[" + _BREAKS + "]")  # a plain class: 4x faster than with "\r\n|"
MAX_LINE = 16_384  # characters in one directive line (an inline output_schema fits)
DEFAULT_MAX_LINES = 200


def _number(key: str, raw: str, *, integer: bool, lo: float, hi: float | None) -> float:
    rng = f">= {lo:g}" if hi is None else f"between {lo:g} and {hi:g}"
    kind = "an integer" if integer else "a number"
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        raise DirectiveError(f"directive {key}={raw!r}: must be {kind} {rng}",
                             details={"key": key}) from None
    if value != value or value < lo or (hi is not None and value > hi):  # NaN or out of range
        raise DirectiveError(f"directive {key}={raw!r}: must be {kind} {rng}",
                             details={"key": key})
    return value


def _apply(out: dict[str, Any], key: str, raw: str) -> None:
    key = key.strip().lower()
    raw = raw.strip()
    if key == "mode":
        if raw not in MODES:
            raise DirectiveError(f"directive mode={raw!r}: must be one of {', '.join(MODES)}",
                                 details={"key": key})
        out["mode"] = raw
    elif key == "budget":
        out["max_budget_usd"] = _number(key, raw, integer=False, lo=0, hi=None)
    elif key == "latency":
        out["max_latency_ms"] = int(_number(key, raw, integer=True, lo=1, hi=None))
    elif key == "min_weight":
        out["min_weight"] = _number(key, raw, integer=False, lo=0, hi=10)
    elif key == "output_schema":
        try:
            schema = json.loads(raw)
        except ValueError:
            schema = None
        if not isinstance(schema, dict):
            raise DirectiveError("directive output_schema: must be a JSON object",
                                 details={"key": key})
        out["output_schema"] = schema
    else:
        raise DirectiveError(f"unknown directive key {key!r}: allowed are mode, budget, "
                             "latency, min_weight, output_schema", details={"key": key})


def _pairs(args: str) -> list[tuple[str, str]]:
    try:
        tokens = shlex.split(args)
    except ValueError:
        tokens = args.split()
    pairs = []
    for tok in tokens:
        if "=" not in tok:
            raise DirectiveError(f"directive {tok!r}: expected key=value",
                                 details={"key": tok})
        k, v = tok.split("=", 1)
        pairs.append((k, v))
    return pairs


class _Budget:
    """Directive lines a request may still use (``TOKENHUB_MAX_DIRECTIVE_LINES``)."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise DirectiveError(
                f"too many directive lines: at most {self.limit} per request "
                "(TOKENHUB_MAX_DIRECTIVE_LINES); every line naming @@tokenhub and every "
                "line of a directive block counts", details={"key": "directive_lines"})


def _line_end(text: str, start: int) -> tuple[int, int]:
    """End of the line starting at ``start`` and start of the next one; a line longer
    than MAX_LINE is an error (it would be parsed as a directive)."""
    found = _BREAK.search(text, start, start + MAX_LINE + 1)
    if found is not None:
        end = found.start()
        return end, end + (2 if text.startswith("\r\n", end) else 1)
    if len(text) - start > MAX_LINE:
        raise DirectiveError(f"directive line longer than {MAX_LINE} characters",
                             details={"key": "line_length"})
    return len(text), len(text)


def _strip_text(text: str, out: dict[str, Any], budget: _Budget) -> str:
    """Parse and remove directives from one text; ``out`` collects values (last wins).

    Linear in the text and bounded by the budget: the marker is found with ``str.find``
    (C), each occurrence is charged to the budget first, and only the lines holding one
    (and the lines of blocks) are looked at in Python; the text between them is copied
    in slices. The old line-by-line loop took 0.86 s on 100,000 directive lines."""
    if _MARK not in text:
        return text
    budget.take(text.count(_MARK))
    breaks = [c for c in _BREAKS if c in text]
    kept: list[str] = []
    pos = 0  # text before pos is decided (kept or dropped); pos is a line start
    lo = 0  # look back for a line start from here: after the previous marker
    while (m := text.find(_MARK, lo)) >= 0:
        brk = max((text.rfind(c, lo, m) for c in breaks), default=-1)
        if brk >= 0:
            line_start = brk + 1
        elif lo == pos:
            line_start = pos
        else:  # the line of the previous marker, which was not a directive
            lo = m + len(_MARK)
            continue
        lo = m + len(_MARK)
        if text[line_start:m].strip():
            continue  # @@tokenhub after other text: not a directive
        end, nxt = _line_end(text, line_start)
        match = _LINE.match(text, line_start, end)
        if match is None:
            continue  # e.g. "@@tokenhubs"
        kept.append(text[pos:line_start])
        args = (match.group("args") or "").strip()
        if args:
            for k, v in _pairs(args):
                _apply(out, k, v)
            pos = lo = nxt
            continue
        i = nxt  # block: key=value lines until @@end
        while True:
            if i >= len(text):
                raise DirectiveError("directive block opened with @@tokenhub has no @@end",
                                     details={"key": "@@end"})
            budget.take(1)
            end, nxt = _line_end(text, i)
            line = text[i:end].strip()
            i = nxt
            if line == _END:
                break
            if line:
                if "=" not in line:
                    raise DirectiveError(f"directive block line {line!r}: expected key=value",
                                         details={"key": line})
                k, v = line.split("=", 1)
                _apply(out, k, v)
        pos = lo = i
    kept.append(text[pos:])
    return "".join(kept).strip(_BREAKS)


def parse_directives(messages: list[Message], *, max_lines: int = DEFAULT_MAX_LINES
                     ) -> tuple[list[Message], DirectiveOverrides | None]:
    """Return the messages without directives, and what the directives set (None if none).
    More than ``max_lines`` directive lines in all the messages is a DirectiveError."""
    budget = _Budget(max_lines)
    out: dict[str, Any] = {}
    found = False
    clean: list[Message] = []
    for msg in messages:
        if isinstance(msg.content, str) and _MARK in msg.content:
            found = True
            text = _strip_text(msg.content, out, budget)
            clean.append(msg.model_copy(update={"content": text}))
        elif isinstance(msg.content, list) and any(
                _MARK in str(p.get("text", "")) for p in msg.content if isinstance(p, dict)):
            found = True
            parts = [({**p, "text": _strip_text(str(p["text"]), out, budget)}
                      if isinstance(p, dict) and "text" in p else p) for p in msg.content]
            clean.append(msg.model_copy(update={"content": parts}))
        else:
            clean.append(msg)
    return clean, (DirectiveOverrides(**out) if found else None)
