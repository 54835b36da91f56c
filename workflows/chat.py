"""ChatWorkflow: one routed chat request (thin: the logic is shared.orchestration.chat, or
shared.orchestration.durable_stream for a streamed one)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import CHAT_WORKFLOW
    from shared.errors import TokenHubError
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from shared.orchestration.durable_stream import run_durable_stream
    from workflows import attributes
    from workflows.effects import TemporalEffects
    from workflows.stream_effects import TemporalStreamEffects


@workflow.defn(name=CHAT_WORKFLOW)
class ChatWorkflow:
    @workflow.init
    def __init__(self, inp: ChatInput) -> None:
        # A streamed run's event log (the answer's deltas, offset-addressed: SSE resume).
        # Registers its handlers only; a run that does not stream never writes to it.
        self.stream = WorkflowStream()

    @workflow.run
    async def run(self, inp: ChatInput) -> ChatOutcome:
        try:
            if inp.stream is not None:
                fx = TemporalStreamEffects(inp.retry, self.stream, inp.stream)
                out = await run_durable_stream(inp, fx)
            else:
                out = await run_chat(inp, TemporalEffects(inp.retry))
        except TokenHubError as err:
            attributes.upsert_outcome(status="error")
            raise run_failure(err) from None
        except asyncio.CancelledError:
            attributes.upsert_outcome(status="cancelled")
            raise
        run = out.summary
        attributes.upsert_outcome(status="ok", model=run.model, provider=run.provider,
                                  cost_usd=run.cost_usd)
        return out
