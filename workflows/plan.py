"""PlanWorkflow: adversarial / vote / refine / planning (logic in shared.orchestration.plan)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.names import PLAN_WORKFLOW, PROGRESS_QUERY
    from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
    from shared.orchestration.progress import RunProgress
    from workflows.effects import TemporalEffects
    from workflows.progress import RunReporter, reported


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
        return await reported(
            self.reporter, run_plan(inp, TemporalEffects(inp.retry, self.reporter.tracker)))
