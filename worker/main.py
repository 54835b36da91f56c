"""Build the Temporal client and Worker (data converter, sandbox passthrough, activities)."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.provider import AdapterLookup, ProviderActivities
from activities.records import RecordActivities
from shared.config import Settings
from shared.orchestration.ports import RecordBatch
from workflows import attributes
from workflows.chat import ChatWorkflow
from workflows.plan import PlanWorkflow

log = logging.getLogger("tokenhub.worker")

WORKFLOWS = [ChatWorkflow, PlanWorkflow]
# Our pure modules and their libraries are safe to share with the sandbox: passing them
# through avoids re-importing them for every workflow run.
PASSTHROUGH = ("shared", "workflows", "pydantic", "pydantic_core", "jsonschema",
               "annotated_types", "referencing", "rpds", "typing_inspection")


# The gateway must notice a dead Temporal within about a second (then it serves locally);
# a worker keeps the SDK's patient defaults.
FAST_FAIL = RetryConfig(initial_interval_millis=50, max_interval_millis=200,
                        max_elapsed_time_millis=1000, max_retries=4)


async def connect(settings: Settings, *, timeout_s: float | None = None,
                  retry: RetryConfig | None = None) -> Client:
    coro = Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                          data_converter=pydantic_data_converter, retry_config=retry)
    return await asyncio.wait_for(coro, timeout_s or settings.temporal_connect_timeout_s)


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register TokenHub's search attributes (idempotent; needs operator rights)."""
    svc = client.operator_service
    existing = await svc.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace))
    known = set(existing.custom_attributes)
    types = {"KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
             "DOUBLE": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE}
    missing = {k.name: types[k.indexed_value_type.name]
               for k in attributes.ALL_KEYS if k.name not in known}
    if missing:
        await svc.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing))
        log.info("registered search attributes: %s", ", ".join(sorted(missing)))


def sandboxed_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))


def build_worker(client: Client, *, task_queue: str, lookup: AdapterLookup,
                 writer: Callable[[RecordBatch], Awaitable[None]],
                 attempt_timeout_s: float, max_concurrent: int = 256,
                 sandbox: bool = False) -> Worker:
    """``sandbox``: run workflow code in Temporal's sandbox (TOKENHUB_TEMPORAL_WORKFLOW_SANDBOX;
    see shared/config.py for why it is off by default and what checks determinism)."""
    provider = ProviderActivities(lookup, attempt_timeout_s=attempt_timeout_s)
    records = RecordActivities(writer)
    runner: WorkflowRunner = sandboxed_runner() if sandbox else UnsandboxedWorkflowRunner()
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                  activities=[provider.call_model, records.record_run],
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


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
