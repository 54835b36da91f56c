"""ChatWorkflow: one routed chat request (thin: the logic is shared.orchestration.chat)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from shared.errors import TokenHubError
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from workflows import attributes
    from workflows.effects import TemporalEffects
    from workflows.errors import to_application_error


@workflow.defn(name="ChatWorkflow")
class ChatWorkflow:
    @workflow.run
    async def run(self, inp: ChatInput) -> ChatOutcome:
        try:
            out = await run_chat(inp, TemporalEffects(inp.retry))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            raise to_application_error(err) from None
        attributes.upsert_outcome(status="ok", model=out.negotiated_model,
                                  provider=out.provider, cost_usd=out.response.cost_usd)
        return out
