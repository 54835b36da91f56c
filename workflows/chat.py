"""ChatWorkflow: one routed chat request (thin: the logic is shared.orchestration.chat, or
shared.orchestration.durable_stream for a streamed one)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream

with workflow.unsafe.imports_passed_through():
    from engine.names import CHAT_WORKFLOW, PROGRESS_QUERY
    from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
    from shared.orchestration.durable_stream import run_durable_stream
    from shared.orchestration.progress import RunProgress
    from workflows.effects import TemporalEffects
    from workflows.progress import RunReporter, reported
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
        if inp.stream is not None:
            fx = TemporalStreamEffects(inp.retry, self.stream, inp.stream)
            return await reported(self.reporter, run_durable_stream(inp, fx))
        return await reported(
            self.reporter, run_chat(inp, TemporalEffects(inp.retry, self.reporter.tracker)))
