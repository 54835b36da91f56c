"""Request limits checked before the expensive work (README "Limits").

What one request may make the gateway compute is bounded here and in the directive
parser, so that no request holds the event loop for long (the goal: under 50 ms). The
figures below were measured on the 2-core development box:

- Validating a body costs about a microsecond per JSON item, far more for items that
  become pydantic models: a 4 MiB body of 150,000 tiny messages took 490 ms to
  validate, and pydantic-core holds the GIL while it validates, so running it in a
  thread does not free the loop (measured: a 497 ms stall of the loop either way).
  Hence a bound on the number of JSON items, counted on the raw bytes before parsing:
  at most ~10 ms for any 4 MiB body; the worst body under the default 50,000 items
  validates in ~20 ms. Bodies under twice the limit in bytes cannot exceed it and are
  not counted at all (the hot path pays one comparison).
- The message count (``TOKENHUB_MAX_MESSAGES``) is then checked on the validated body,
  before directives, estimation and routing; directive lines are bounded in
  ``shared/routing/directives.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import Message
from shared.errors import BadRequest


@dataclass(frozen=True)
class RequestLimits:
    """The per-request limits the preparation of a run enforces."""

    max_messages: int = 2048
    max_directive_lines: int = 200


DEFAULT_LIMITS = RequestLimits()


def json_items(raw: bytes, limit: int) -> int:
    """The JSON items of ``raw`` — strings (keys included), objects, arrays and the values
    after each comma — or, as soon as it is certain to exceed ``limit``, some number above
    it. Each item takes at least two bytes, so bodies up to ``2 * limit`` bytes are not
    scanned. Linear, in C: escapes are dropped so that every remaining quote delimits a
    string, then the structure outside the strings is counted."""
    if len(raw) <= 2 * limit:
        return 0
    s = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    strings = s.count(b'"') // 2
    if strings > limit:  # and the split below would make one object per string
        return strings
    outside = b"".join(s.split(b'"')[0::2])
    return strings + outside.count(b"{") + outside.count(b"[") + outside.count(b",")


def check_json_items(raw: bytes, limit: int) -> None:
    """400 when the body has more JSON items than ``limit`` (before it is parsed)."""
    if json_items(raw, limit) > limit:
        raise BadRequest(f"request body has more than {limit} JSON items (strings, "
                         "numbers, objects, arrays; TOKENHUB_MAX_JSON_ITEMS)")


def check_messages(messages: list[Message], limit: int) -> None:
    """400 naming the field when a request has more than ``limit`` messages."""
    if len(messages) > limit:
        raise BadRequest(f"messages: at most {limit} messages per request "
                         f"(TOKENHUB_MAX_MESSAGES), got {len(messages)}")
