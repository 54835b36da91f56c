"""Token estimate (SPEC §4): characters / 4, computed by the gateway.

A client's ``estimated_input_tokens`` may only raise the estimate (e.g. a tokenizer that
knows the prompt is denser than 4 characters a token): it is never trusted to lower it,
since the estimate sizes the budget reservation and decides the context-window check.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from shared.contracts import Message

SizeBucket = Literal["small", "medium", "large"]


def tokens_for_chars(chars: int) -> int:
    """The estimate for ``chars`` characters of text: one token per 4, at least 1."""
    return max(1, math.ceil(chars / 4))


def estimate_tokens(messages: list[Message], explicit: int | None = None) -> int:
    """The gateway's estimate; ``explicit`` (the client's) only counts when it is larger."""
    counted = tokens_for_chars(sum(len(m.text()) for m in messages))
    return max(counted, explicit or 0)


def estimate_wire_tokens(messages: list[dict[str, Any]]) -> int:
    """The same estimate for OpenAI-shaped message dicts (a run's ``messages``)."""
    chars = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return tokens_for_chars(chars)


def size_bucket(tokens: int) -> SizeBucket:
    """Thompson-sampling bucket: <1k, ≤10k, >10k tokens."""
    if tokens < 1000:
        return "small"
    if tokens <= 10_000:
        return "medium"
    return "large"
