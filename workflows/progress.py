"""An async run's reporting inside its workflow: the progress it answers to the
``progress`` query and the events it publishes to its Workflow Stream (topic
``progress``: the channel durable streams already use, so the gateway relays and resumes
both alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import PROGRESS_TOPIC, SETTLE_CHARGE
    from shared.errors import TokenHubError
    from shared.orchestration.progress import (
        AsyncRun,
        ProgressEvent,
        ProgressTracker,
        RunProgress,
    )
    from workflows import attributes

Out = TypeVar("Out")

# subscribers blocked on the log get its last event before the run closes
SETTLE_TIMEOUT = timedelta(seconds=2)
CHARGE_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10))  # until the ledger answers


class RunReporter:
    def __init__(self, stream: WorkflowStream, run: AsyncRun | None, *,
                 steps_total: int) -> None:
        self.run = run
        self.tracker: ProgressTracker | None = None
        if run is not None:
            publish = None
            if run.events:
                publish = stream.topic(PROGRESS_TOPIC, type=ProgressEvent).publish
            self.tracker = ProgressTracker(steps_total=steps_total, now=workflow.now,
                                           publish=publish)
        self._idle = RunProgress(steps_total=steps_total)

    def progress(self) -> RunProgress:
        return self.tracker.progress if self.tracker is not None else self._idle

    async def finish(self, status: str, cost_usd: float | None = None) -> None:
        """Settle the caller's budget hold on what the run cost, publish the run's last
        event and let blocked readers see it."""
        if self.tracker is None:
            return
        charge = self.run.charge if self.run is not None else None
        if charge is not None:
            cost = self.tracker.progress.cost_usd if cost_usd is None else cost_usd
            await workflow.execute_local_activity(
                SETTLE_CHARGE, charge.model_copy(update={"cost_usd": cost}),
                start_to_close_timeout=timedelta(seconds=30), retry_policy=CHARGE_RETRY)
        self.tracker.done(status)
        try:
            await workflow.wait_condition(workflow.all_handlers_finished,
                                          timeout=SETTLE_TIMEOUT)
        except TimeoutError:
            pass


async def reported(reporter: RunReporter, run: Awaitable[Out]) -> Out:
    """Await a Chat/Plan run and report its outcome once, for both workflows: search
    attributes, the async run's final event, and a TokenHubError as the run's failure."""
    try:
        out = await run
    except TokenHubError as err:
        attributes.upsert_outcome(status="error")
        await reporter.finish("failed", getattr(err.summary, "cost_usd", None))
        raise run_failure(err) from None
    except asyncio.CancelledError:
        attributes.upsert_outcome(status="cancelled")
        await reporter.finish("cancelled")
        raise
    summary: Any = getattr(out, "summary")  # noqa: B009 - ChatOutcome and PlanOutcome
    attributes.upsert_outcome(status="ok", model=summary.model, provider=summary.provider,
                              cost_usd=summary.cost_usd)
    await reporter.finish("completed", summary.cost_usd)
    return out
