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
_LINE = re.compile(r"^\s*@@tokenhub(?:\s+(?P<args>.*))?\s*$")


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


def _strip_text(text: str, out: dict[str, Any]) -> str:
    """Parse and remove directives from one text; ``out`` collects values (last wins)."""
    if _MARK not in text:
        return text
    kept: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _LINE.match(lines[i])
        if match is None:
            kept.append(lines[i])
            i += 1
            continue
        args = (match.group("args") or "").strip()
        if args:
            for k, v in _pairs(args):
                _apply(out, k, v)
            i += 1
            continue
        i += 1  # block: key=value lines until @@end
        while i < len(lines) and lines[i].strip() != _END:
            line = lines[i].strip()
            if line:
                if "=" not in line:
                    raise DirectiveError(f"directive block line {line!r}: expected key=value",
                                         details={"key": line})
                k, v = line.split("=", 1)
                _apply(out, k, v)
            i += 1
        if i >= len(lines):
            raise DirectiveError("directive block opened with @@tokenhub has no @@end",
                                 details={"key": "@@end"})
        i += 1
    return "\n".join(kept).strip("\n")


def parse_directives(messages: list[Message]) -> tuple[list[Message], DirectiveOverrides | None]:
    """Return the messages without directives, and what the directives set (None if none)."""
    out: dict[str, Any] = {}
    found = False
    clean: list[Message] = []
    for msg in messages:
        if isinstance(msg.content, str) and _MARK in msg.content:
            found = True
            clean.append(msg.model_copy(update={"content": _strip_text(msg.content, out)}))
        elif isinstance(msg.content, list) and any(
                _MARK in str(p.get("text", "")) for p in msg.content if isinstance(p, dict)):
            found = True
            parts = [({**p, "text": _strip_text(str(p["text"]), out)}
                      if isinstance(p, dict) and "text" in p else p) for p in msg.content]
            clean.append(msg.model_copy(update={"content": parts}))
        else:
            clean.append(msg)
    return clean, (DirectiveOverrides(**out) if found else None)
