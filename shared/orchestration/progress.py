"""Async runs: what a run reports while it runs (progress, events) and how it waits.

An async run (``POST /v1/runs``) is an ordinary chat or plan run whose input carries
:class:`AsyncRun`. Its runtime keeps a :class:`RunProgress` (the workflow answers it to
the ``progress`` query) and publishes each :class:`ProgressEvent` to the run's event log
(on Temporal: the ``progress`` topic of the run's Workflow Stream, the channel streams
already use), so ``GET /v1/runs/{id}/events`` can relay and resume them.

Deadline-aware waiting (:func:`wait_delay`): a run with a deadline whose every candidate
failed as rate-limited or down does not fail; it waits (Retry-After, else a doubling
backoff) on the runtime's timer and tries again, until the deadline. A run without a
deadline (every synchronous request) fails at once, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from shared.contracts import Attempt

RunStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled"]
EventType = Literal["step_started", "step_finished", "step_failed", "waiting", "resumed",
                    "finished"]
# outcomes that may pass with time: a rate limit, a provider that is down
WAITABLE = frozenset({"rate_limited", "transient"})
MAX_BACKOFF_S = 60.0


class Charge(BaseModel):
    """An async run's budget hold, settled by the run itself when it ends (so a gateway
    that stops meanwhile loses nothing): its real cost moves to the key's spend."""

    api_key_id: str
    month: str
    hold_id: str | None = None  # None: the key has no budget (the spend is still recorded)
    cost_usd: float = 0.0


class AsyncRun(BaseModel):
    """Set on the input of a run started through ``POST /v1/runs``."""

    deadline: datetime | None = None  # wait out rate limits and outages until then
    events: bool = True  # publish progress events to the run's event log
    charge: Charge | None = None  # the caller's budget hold


class ProgressEvent(BaseModel):
    """One item of a run's progress log (SSE ``event:`` = ``type``)."""

    type: EventType
    at: datetime
    step: str | None = None
    model: str | None = None
    provider: str | None = None
    cost_usd: float | None = None  # step_finished: that call's cost
    total_cost_usd: float = 0.0  # so far
    tries: int | None = None  # tries on that model (transient retries included)
    outcome: str | None = None  # step_failed: the error class
    message: str | None = None
    until: datetime | None = None  # waiting: when the run tries again
    status: str | None = None  # finished: completed | failed | cancelled


class RunProgress(BaseModel):
    """The answer of a run's ``progress`` query."""

    status: Literal["running", "waiting"] = "running"
    steps_done: int = 0
    steps_total: int = 1
    current_step: str | None = None
    current_model: str | None = None
    cost_usd: float = 0.0
    retries: int = 0  # failed attempts so far (failovers and waits)
    waiting_until: datetime | None = None
    started: bool = False  # a step has started (else the run is still queued)


Publish = Callable[[ProgressEvent], None]


class ProgressTracker:
    """Keeps a run's :class:`RunProgress` and publishes its events (the runtime calls it
    around each provider call and each wait)."""

    def __init__(self, *, steps_total: int, now: Callable[[], datetime],
                 publish: Publish | None = None) -> None:
        self.progress = RunProgress(steps_total=steps_total)
        self._now, self._publish = now, publish

    def _emit(self, event_type: EventType, **fields: object) -> None:
        if self._publish is not None:
            self._publish(ProgressEvent.model_validate(
                {"type": event_type, "at": self._now(),
                 "total_cost_usd": self.progress.cost_usd, **fields}))

    def started(self, step: str, model: str, provider: str) -> None:
        p = self.progress
        p.started, p.current_step, p.current_model = True, step, model
        self._emit("step_started", step=step, model=model, provider=provider)

    def finished(self, attempt: Attempt, cost_usd: float) -> None:
        p = self.progress
        p.steps_done += 1
        p.steps_total = max(p.steps_total, p.steps_done)
        p.cost_usd += cost_usd
        self._emit("step_finished", step=attempt.step, model=attempt.model,
                   provider=attempt.provider, cost_usd=cost_usd, tries=attempt.tries)

    def failed(self, attempt: Attempt) -> None:
        p = self.progress
        p.retries += 1
        p.cost_usd += attempt.cost_usd
        self._emit("step_failed", step=attempt.step, model=attempt.model,
                   provider=attempt.provider, tries=attempt.tries, outcome=attempt.outcome,
                   message=attempt.message)

    def waiting(self, seconds: float, reason: str) -> None:
        p = self.progress
        p.status = "waiting"
        p.waiting_until = self._now() + timedelta(seconds=seconds)
        self._emit("waiting", until=p.waiting_until, message=reason)

    def resumed(self) -> None:
        p = self.progress
        p.status, p.waiting_until = "running", None
        self._emit("resumed")

    def done(self, status: str) -> None:
        self._emit("finished", status=status)


def wait_delay(failed: list[Attempt], *, now: datetime, deadline: datetime | None,
               rounds: int) -> float | None:
    """How long to wait before trying the candidates again, or None to fail now.

    Only when there is a deadline still ahead and every attempt of the round failed as
    rate-limited or down; the wait is the largest Retry-After the providers gave, else
    1 s doubling per round (up to 60 s), and never past the deadline."""
    if deadline is None or not failed or any(a.outcome not in WAITABLE for a in failed):
        return None
    left = (deadline - now).total_seconds()
    if left <= 0:
        return None
    hinted = [a.retry_after for a in failed if a.retry_after]
    delay = max(hinted) if hinted else min(2.0 ** rounds, MAX_BACKOFF_S)
    return max(min(delay, left), 0.001)


def wait_reason(failed: list[Attempt]) -> str:
    kinds = sorted({a.outcome for a in failed})
    models = sorted({a.model for a in failed})
    return f"every candidate ({', '.join(models)}) failed: {', '.join(kinds)}"

