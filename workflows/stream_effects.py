"""Temporal effects of a durable stream: the log is the workflow's Workflow Stream, each
provider call a heartbeating activity, first on the task queue of the gateway holding the
client (live deltas in-process), on the shared queue when that gateway is gone.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.workflow_streams import WorkflowStream
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import CancelledError as TemporalCancelled
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from engine.failures import attempt_from_failure
    from engine.names import STREAM_MODEL, STREAM_TOPIC
    from shared.orchestration.ports import ModelCallFailed
    from shared.orchestration.retry import RetrySpec
    from shared.orchestration.streamlog import StreamCall, StreamEvent, StreamOptions, StreamPiece
    from workflows.effects import TemporalEffects, retry_policy

# a whole answer may take long; liveness is the heartbeat's job
STREAM_CALL_TIMEOUT = timedelta(hours=1)
SETTLE_TIMEOUT = timedelta(seconds=2)
# a cancelled run waits for its call to stop (at its next heartbeat) and flush what it
# produced to the log, so the run is charged on it
WAIT = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED


class TemporalStreamEffects(TemporalEffects):
    def __init__(self, retry: RetrySpec, stream: WorkflowStream, opts: StreamOptions) -> None:
        super().__init__(retry)
        self._stream = stream
        self._topic = stream.topic(STREAM_TOPIC, type=StreamEvent)
        self._opts = opts
        self._relay_queue = opts.relay_queue

    def events(self) -> list[StreamEvent]:
        convert = workflow.payload_converter()
        out = []
        for item in self._stream.get_state().log:
            payload = Payload()
            payload.ParseFromString(base64.b64decode(item.data))
            out.append(convert.from_payload(payload, StreamEvent))
        return out

    def publish(self, event: StreamEvent) -> None:
        self._topic.publish(event)

    async def settle(self) -> None:
        """Let blocked subscribers' polls return the end event before the run closes."""
        try:
            await workflow.wait_condition(workflow.all_handlers_finished,
                                          timeout=SETTLE_TIMEOUT)
        except TimeoutError:
            pass

    async def stream_model(self, call: StreamCall) -> StreamPiece:
        opts, spec = self._opts, self._retry
        heartbeat = timedelta(seconds=opts.heartbeat_timeout_s)
        policy = retry_policy(spec)
        if self._relay_queue is not None:
            try:
                piece: StreamPiece = await workflow.execute_activity(
                    STREAM_MODEL, call, result_type=StreamPiece, task_queue=self._relay_queue,
                    schedule_to_start_timeout=timedelta(seconds=opts.relay_start_timeout_s),
                    start_to_close_timeout=STREAM_CALL_TIMEOUT, heartbeat_timeout=heartbeat,
                    retry_policy=policy, cancellation_type=WAIT,
                    summary=f"stream (relay): {call.call.model.id}")
                return piece
            except ActivityError as err:
                if isinstance(err.cause, TemporalCancelled):
                    raise asyncio.CancelledError() from None
                if not isinstance(err.cause, TemporalTimeout):
                    raise ModelCallFailed(attempt_from_failure(call.call, err)) from None
                # that gateway is gone (or stalled): the shared workers take over, after
                # re-reading what it had appended
                self._relay_queue = None
                call = call.model_copy(update={"resume": True})
        try:
            shared: StreamPiece = await workflow.execute_activity(
                STREAM_MODEL, call, result_type=StreamPiece,
                start_to_close_timeout=STREAM_CALL_TIMEOUT, heartbeat_timeout=heartbeat,
                retry_policy=policy, cancellation_type=WAIT,
                summary=f"stream: {call.call.model.id}")
        except (ActivityError, ApplicationError) as err:
            if isinstance(err, ActivityError) and isinstance(err.cause, TemporalCancelled):
                raise asyncio.CancelledError() from None
            raise ModelCallFailed(attempt_from_failure(call.call, err)) from None
        return shared
