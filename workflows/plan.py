"""PlanWorkflow: adversarial / vote / refine / planning (logic in shared.orchestration.plan)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import PLAN_WORKFLOW
    from shared.errors import TokenHubError
    from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
    from workflows import attributes
    from workflows.effects import TemporalEffects


@workflow.defn(name=PLAN_WORKFLOW)
class PlanWorkflow:
    @workflow.run
    async def run(self, inp: PlanInput) -> PlanOutcome:
        try:
            out = await run_plan(inp, TemporalEffects(inp.retry))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            raise run_failure(err) from None
        run = out.summary
        attributes.upsert_outcome(status="ok", model=run.model, provider=run.provider,
                                  cost_usd=run.cost_usd)
        return out
