"""Deadline-aware waiting and the progress tracker (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.contracts import Attempt
from shared.orchestration.progress import ProgressEvent, ProgressTracker, wait_delay

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def att(outcome: str, retry_after: float | None = None) -> Attempt:
    return Attempt(model="m", provider="p", outcome=outcome,  # type: ignore[arg-type]
                   retry_after=retry_after)


def test_no_deadline_never_waits() -> None:
    assert wait_delay([att("rate_limited", 2)], now=NOW, deadline=None, rounds=0) is None


def test_retry_after_then_backoff_bounded_by_the_deadline() -> None:
    later = NOW + timedelta(seconds=10)
    assert wait_delay([att("rate_limited", 2), att("transient")], now=NOW,
                      deadline=later, rounds=0) == 2
    assert [wait_delay([att("transient")], now=NOW, deadline=later, rounds=r)
            for r in range(5)] == [1, 2, 4, 8, 10]  # the last one capped by the deadline
    assert wait_delay([att("transient")], now=later, deadline=later, rounds=0) is None


def test_a_failure_that_time_does_not_fix_fails_at_once() -> None:
    later = NOW + timedelta(minutes=5)
    for outcome in ("fatal", "context_overflow"):
        assert wait_delay([att("rate_limited", 1), att(outcome)], now=NOW, deadline=later,
                          rounds=0) is None
    assert wait_delay([], now=NOW, deadline=later, rounds=0) is None


def test_tracker_counts_steps_cost_and_waits() -> None:
    events: list[ProgressEvent] = []
    t = ProgressTracker(steps_total=2, now=lambda: NOW, publish=events.append)
    t.started("plan", "small", "p")
    t.failed(att("rate_limited"))
    t.waiting(3, "every candidate failed")
    assert t.progress.status == "waiting"
    assert t.progress.waiting_until == NOW + timedelta(seconds=3)
    t.resumed()
    ok = Attempt(model="small", provider="p", outcome="ok", step="plan", tries=1)
    t.finished(ok, 0.25)
    t.done("completed")
    p = t.progress
    assert (p.status, p.steps_done, p.steps_total, p.retries, p.cost_usd) == (
        "running", 1, 2, 1, 0.25)
    assert [e.type for e in events] == ["step_started", "step_failed", "waiting", "resumed",
                                        "step_finished", "finished"]
    assert events[-1].total_cost_usd == 0.25
