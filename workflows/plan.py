"""PlanWorkflow: adversarial / vote / refine / planning (logic in shared.orchestration.plan)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from shared.errors import TokenHubError
    from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
    from workflows import attributes
    from workflows.effects import TemporalEffects
    from workflows.errors import to_application_error


@workflow.defn(name="PlanWorkflow")
class PlanWorkflow:
    @workflow.run
    async def run(self, inp: PlanInput) -> PlanOutcome:
        try:
            out = await run_plan(inp, TemporalEffects(inp.retry))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            raise to_application_error(err) from None
        ok = next((a for a in out.attempts if a.outcome == "ok"), None)
        attributes.upsert_outcome(status="ok", model=ok.model if ok else None,
                                  provider=ok.provider if ok else None, cost_usd=out.cost_usd)
        return out
