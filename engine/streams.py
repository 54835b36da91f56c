"""Reading a stream run's event log from outside the workflow (activity, gateway).

The log is the run's Workflow Stream (``temporalio.contrib.workflow_streams``), one topic
(:data:`engine.names.STREAM_TOPIC`) of :class:`~shared.orchestration.streamlog.StreamEvent`.
Live readers subscribe (``WorkflowStreamClient.subscribe``); this module reads what the
log holds *now*, through the stream's poll query, which also answers for a closed run
(replayed on a worker, while Temporal retains its history).
"""

from __future__ import annotations

import base64
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.workflow_streams import PollInput, PollResult

from engine.names import STREAM_TOPIC
from shared.orchestration.streamlog import StreamEvent

POLL = "__temporal_workflow_stream_poll"  # the stream's query (and update) name
OFFSET = "__temporal_workflow_stream_offset"


def decode(client: Client, wire: str) -> StreamEvent:
    """One log item as the stream's poll answer carries it (base64 of a Payload)."""
    payload = Payload()
    payload.ParseFromString(base64.b64decode(wire))
    event: StreamEvent = client.data_converter.payload_converter.from_payload(
        payload, StreamEvent)
    return event


async def read_log(client: Client, handle: WorkflowHandle[Any, Any], from_offset: int = 0
                   ) -> list[tuple[int, StreamEvent]]:
    """Every event at ``from_offset`` or later, as the log holds them now."""
    out: list[tuple[int, StreamEvent]] = []
    offset = from_offset
    while True:
        res: PollResult = await handle.query(
            POLL, PollInput(topics=[STREAM_TOPIC], from_offset=offset), result_type=PollResult)
        out += [(item.offset, decode(client, item.data)) for item in res.items]
        offset = res.next_offset
        if not res.more_ready:
            return out


async def log_length(handle: WorkflowHandle[Any, Any]) -> int:
    """The offset the next event will get."""
    n: int = await handle.query(OFFSET, result_type=int)
    return n
