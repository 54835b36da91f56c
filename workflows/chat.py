"""ChatWorkflow: one routed chat request (thin: the logic is shared.orchestration.chat)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import CHAT_WORKFLOW
    from shared.errors import TokenHubError
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from workflows import attributes
    from workflows.effects import TemporalEffects


@workflow.defn(name=CHAT_WORKFLOW)
class ChatWorkflow:
    @workflow.run
    async def run(self, inp: ChatInput) -> ChatOutcome:
        try:
            out = await run_chat(inp, TemporalEffects(inp.retry))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            raise run_failure(err) from None
        run = out.summary
        attributes.upsert_outcome(status="ok", model=run.model, provider=run.provider,
                                  cost_usd=run.cost_usd)
        return out
