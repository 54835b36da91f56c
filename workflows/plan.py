"""PlanWorkflow: adversarial / vote / refine / planning (logic in shared.orchestration.plan)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import PLAN_WORKFLOW, PROGRESS_QUERY
    from shared.errors import TokenHubError
    from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
    from shared.orchestration.progress import RunProgress
    from workflows import attributes
    from workflows.effects import TemporalEffects
    from workflows.progress import RunReporter


@workflow.defn(name=PLAN_WORKFLOW)
class PlanWorkflow:
    @workflow.init
    def __init__(self, inp: PlanInput) -> None:
        # an async run's progress events (never written by a synchronous plan)
        self.stream = WorkflowStream()
        self.reporter = RunReporter(self.stream, inp.run, steps_total=inp.calls)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RunProgress:
        return self.reporter.progress()

    @workflow.run
    async def run(self, inp: PlanInput) -> PlanOutcome:
        try:
            out = await run_plan(inp, TemporalEffects(inp.retry, self.reporter.tracker))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            await self.reporter.finish("failed", getattr(err.summary, "cost_usd", None))
            raise run_failure(err) from None
        except asyncio.CancelledError:
            attributes.upsert_outcome(status="cancelled")
            await self.reporter.finish("cancelled")
            raise
        run = out.summary
        attributes.upsert_outcome(status="ok", model=run.model, provider=run.provider,
                                  cost_usd=run.cost_usd)
        await self.reporter.finish("completed", run.cost_usd)
        return out
