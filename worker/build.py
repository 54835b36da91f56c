"""Build a Temporal Worker: workflows, activities, runner (sandbox passthrough), pollers."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.batches import BatchActivities
from activities.provider import AdapterLookup, ProviderActivities
from activities.records import RecordActivities
from activities.stream import StreamActivities
from shared.orchestration.handoff import Handoff
from shared.orchestration.ports import RecordBatch
from shared.security.budgets import BudgetLedger
from shared.store.batches import BatchStore
from workflows.batch import BatchWorkflow
from workflows.batch_chunk import BatchChunkWorkflow
from workflows.chat import ChatWorkflow
from workflows.plan import PlanWorkflow

log = logging.getLogger("tokenhub.worker")

WORKFLOWS = [ChatWorkflow, PlanWorkflow, BatchWorkflow, BatchChunkWorkflow]
# Our pure modules and their libraries are safe to share with the sandbox: passing them
# through avoids re-importing them for every workflow run.
# A stream activity heartbeats every 0.2 s; the worker sends at most one heartbeat per
# this interval, which bounds how late a cancelled run stops reading its upstream.
HEARTBEAT_THROTTLE = timedelta(milliseconds=400)
PASSTHROUGH = ("shared", "workflows", "engine", "pydantic", "pydantic_core", "jsonschema",
               "annotated_types", "referencing", "rpds", "typing_inspection")


def sandboxed_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def build_worker(client: Client, *, task_queue: str, lookup: AdapterLookup,
                 writer: Callable[[RecordBatch], Awaitable[None]],
                 attempt_timeout_s: float, max_concurrent: int = 256,
                 sandbox: bool = False, handoff: Handoff | None = None,
                 stream_batch_s: float = 0.1, batches: BatchStore | None = None,
                 budgets: BudgetLedger | None = None) -> Worker:
    """``sandbox``: run workflow code in Temporal's sandbox (TOKENHUB_TEMPORAL_WORKFLOW_SANDBOX;
    see shared/config.py for why it is off by default and what checks determinism).
    ``handoff``: this worker runs in a gateway (live stream deltas to its connections)."""
    provider = ProviderActivities(lookup, attempt_timeout_s=attempt_timeout_s)
    records = RecordActivities(writer)
    streams = StreamActivities(lookup, attempt_timeout_s=attempt_timeout_s, handoff=handoff,
                               batch_interval_s=stream_batch_s)
    runner: WorkflowRunner = sandboxed_runner() if sandbox else UnsandboxedWorkflowRunner()
    activities: list[Callable[..., Any]] = [provider.call_model, records.record_run,
                                            streams.stream_model]
    if batches is not None and budgets is not None:  # a batch's store work and budgets
        batch = BatchActivities(batches, budgets)
        activities += [batch.batch_items, batch.store_item, batch.batch_status,
                       batch.hold_item, batch.settle_charge]
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                  activities=activities,
                  max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                  workflow_runner=runner, max_concurrent_activities=max_concurrent,
                  max_concurrent_local_activities=max_concurrent,
                  # A chat run is one workflow task on the normal queue (its call is a
                  # local activity); sticky queues only serve plans' later tasks. So most
                  # pollers wait on the normal queue (8 of 10, the SDK's default is 1 of
                  # 5): the server hands new tasks to a waiting poller instead of writing
                  # them to its backlog. Measured (bench/, c=16 chat): 58 → 71-82
                  # workflows/s, ~15 % less dev-server and worker CPU per run.
                  workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=10),
                  nonsticky_to_sticky_poll_ratio=4.0)


def build_relay_worker(client: Client, *, task_queue: str, lookup: AdapterLookup,
                       attempt_timeout_s: float, handoff: Handoff,
                       stream_batch_s: float = 0.1, max_concurrent: int = 1024) -> Worker:
    """A gateway's own worker, on a task queue no other process polls (Temporal's
    worker-specific task queue pattern): it runs the stream calls of the runs whose client
    this gateway holds, so their deltas reach the client in-process."""
    streams = StreamActivities(lookup, attempt_timeout_s=attempt_timeout_s, handoff=handoff,
                               batch_interval_s=stream_batch_s)
    return Worker(client, task_queue=task_queue, activities=[streams.stream_model],
                  max_concurrent_activities=max_concurrent,
                  max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                  activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=4))


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
