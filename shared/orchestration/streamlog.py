"""The items of a durable stream's event log and the calls that append to them.

Types only (shared by the orchestration, ``workflows/``, ``activities/`` and the gateway's
relay); the orchestration is ``shared/orchestration/durable_stream.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from shared.contracts import Attempt, Usage
from shared.orchestration.ports import ModelCall


class StreamOptions(BaseModel):
    """How a durable stream is run (set by the gateway when it starts the run)."""

    relay_queue: str | None = None  # the task queue of the gateway holding the client
    include_usage: bool = True  # OpenAI ``stream_options.include_usage`` (SSE usage chunk)
    heartbeat_timeout_s: float = 2.0  # a dead stream activity is retried after this
    relay_start_timeout_s: float = 2.0  # then the shared workers take the call over


class StreamEvent(BaseModel):
    """One item of a run's event log: a delta of the answer, or its end."""

    kind: Literal["delta", "end"] = "delta"
    delta: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    model: str | None = None  # delta: the model that produced it; end: the one that finished
    provider: str | None = None
    usage: Usage | None = None  # end: summed over every attempt
    error: dict[str, str] | None = None  # end of a failed run: {"type", "message"}


class StreamCall(BaseModel):
    """Stream one model's answer into the log, continuing ``prefix`` when it is not empty."""

    call: ModelCall
    prefix: str = ""
    base_offset: int = 0  # the log offset of this call's first delta
    resume: bool = False  # re-read the log first: an earlier try may have appended to it


class StreamPiece(BaseModel):
    """What one streaming call produced (its deltas are in the log already)."""

    attempt: Attempt
    text: str = ""
    next_offset: int = 0
