"""Token estimate (SPEC §4): the client's figure if given, else characters / 4."""

from __future__ import annotations

import math
from typing import Literal

from shared.contracts import Message

SizeBucket = Literal["small", "medium", "large"]


def estimate_tokens(messages: list[Message], explicit: int | None = None) -> int:
    if explicit is not None:
        return explicit
    chars = sum(len(m.text()) for m in messages)
    return max(1, math.ceil(chars / 4))


def size_bucket(tokens: int) -> SizeBucket:
    """Thompson-sampling bucket: <1k, ≤10k, >10k tokens."""
    if tokens < 1000:
        return "small"
    if tokens <= 10_000:
        return "medium"
    return "large"
