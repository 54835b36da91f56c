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
            out = await run_plan(inp, TemporalEffects())
        except TokenHubError as err:
            workflow.upsert_search_attributes([attributes.STATUS.value_set("error")])
            raise to_application_error(err) from None
        ok = next((a for a in out.attempts if a.outcome == "ok"), None)
        workflow.upsert_search_attributes([
            attributes.STATUS.value_set("ok"), attributes.COST_USD.value_set(out.cost_usd),
            attributes.MODEL.value_set(ok.model if ok else ""),
            attributes.PROVIDER.value_set(ok.provider if ok else "")])
        return out
