"""ChatWorkflow: one routed chat request (thin: the logic is shared.orchestration.chat, or
shared.orchestration.durable_stream for a streamed one)."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.failures import run_failure
    from engine.names import CHAT_WORKFLOW, PROGRESS_QUERY
    from shared.errors import TokenHubError
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from shared.orchestration.durable_stream import run_durable_stream
    from shared.orchestration.progress import RunProgress
    from workflows import attributes
    from workflows.effects import TemporalEffects
    from workflows.progress import RunReporter
    from workflows.stream_effects import TemporalStreamEffects


@workflow.defn(name=CHAT_WORKFLOW)
class ChatWorkflow:
    @workflow.init
    def __init__(self, inp: ChatInput) -> None:
        # The run's event log: a streamed run's deltas (offset-addressed: SSE resume), an
        # async run's progress events. Registers its handlers only; a run that neither
        # streams nor runs async never writes to it.
        self.stream = WorkflowStream()
        self.reporter = RunReporter(self.stream, inp.run, steps_total=1)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RunProgress:
        return self.reporter.progress()

    @workflow.run
    async def run(self, inp: ChatInput) -> ChatOutcome:
        try:
            if inp.stream is not None:
                fx = TemporalStreamEffects(inp.retry, self.stream, inp.stream)
                out = await run_durable_stream(inp, fx)
            else:
                out = await run_chat(inp, TemporalEffects(inp.retry, self.reporter.tracker))
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
