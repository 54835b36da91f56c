"""Live deltas handed from a stream activity to the gateway connection waiting for them.

A durable stream's provider call runs on the task queue of the gateway process that
holds the client's connection (worker-specific task queue), so each delta goes to the
client in-process instead of through the stream's polls. The deltas are published to the
run's Workflow Stream in batches (the durable record, for resume), and each is handed
over once the server has acknowledged its batch: a client never holds text the log could
lose if this process dies (then it resumes elsewhere, exactly after its last event). The registry
is process-local and keyed by request id: the gateway opens an inbox before it starts
the run; the activity finds it (or not: on another process it publishes only).

Pure asyncio: the activity (``activities/stream.py``) and the gateway's relay
(``api/stream_relay.py``) meet here because both may import ``shared``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from shared.orchestration.streamlog import StreamEvent

# inbox items: (offset, event) for a delta; (-1, None) when an attempt starts or ends here
Item = tuple[int, StreamEvent | None]
ATTEMPT_CHANGED = -1


@dataclass
class Inbox:
    """One waiting connection's inbox: deltas in log order, with their log offsets."""

    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)
    active: int = 0  # attempts streaming into it right now, in this process

    def put(self, offset: int, event: StreamEvent) -> None:
        self.queue.put_nowait((offset, event))

    def attempt_started(self) -> None:
        self.active += 1
        self.queue.put_nowait((ATTEMPT_CHANGED, None))

    def attempt_ended(self) -> None:
        self.active -= 1
        self.queue.put_nowait((ATTEMPT_CHANGED, None))


class Handoff:
    """request id → the inbox of the connection waiting for that run, in this process."""

    def __init__(self) -> None:
        self._inboxes: dict[str, Inbox] = {}

    def open(self, request_id: str) -> Inbox:
        inbox = self._inboxes[request_id] = Inbox()
        return inbox

    def get(self, request_id: str) -> Inbox | None:
        return self._inboxes.get(request_id)

    def close(self, request_id: str, inbox: Inbox) -> None:
        if self._inboxes.get(request_id) is inbox:
            del self._inboxes[request_id]
