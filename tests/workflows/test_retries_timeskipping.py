"""Retry behaviour of the workflow path on the time-skipping test server.

Activities are stubbed by registering functions under the real activity names;
the backoff timers are skipped, so the test does not wait for them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.devserver import binary
from shared.contracts import Completion, Usage
from shared.orchestration.chat import ChatOutcome
from shared.orchestration.ports import ModelCall, ModelCallResult, RecordBatch
from shared.orchestration.retry import RetrySpec
from tests.factories import chat_input, spec
from worker.build import PASSTHROUGH, WORKFLOWS

pytestmark = pytest.mark.temporal


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    e = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        test_server_startup_timeout=timedelta(seconds=60))  # the SDK's 5 s fails a busy box
    yield e
    await e.shutdown()


class Script:
    """Per-model list of outcomes for the stub activity (error class or "ok")."""

    def __init__(self, plan: dict[str, list[str]]) -> None:
        self.plan = plan
        self.calls: list[tuple[str, int]] = []
        self.records: list[RecordBatch] = []

    @activity.defn(name="call_model")
    async def call_model(self, call: ModelCall) -> ModelCallResult:
        info = activity.info()
        self.calls.append((call.model.id, info.attempt))
        steps = self.plan.get(call.model.id, ["ok"])
        outcome = steps[min(len(self.calls_for(call.model.id)) - 1, len(steps) - 1)]
        if outcome != "ok":
            raise ApplicationError(f"{outcome} from stub", {"status": 500, "tries": info.attempt},
                                   type=outcome, non_retryable=outcome != "transient")
        from shared.contracts import Attempt
        return ModelCallResult(
            completion=Completion(content=f"answer from {call.model.id}",
                                  usage=Usage(prompt_tokens=3, completion_tokens=4)),
            attempt=Attempt(model=call.model.id, provider=call.model.provider_id,
                            outcome="ok", tries=info.attempt), cost_usd=0.001)

    def calls_for(self, model: str) -> list[int]:
        return [a for m, a in self.calls if m == model]

    @activity.defn(name="record_run")
    async def record_run(self, batch: RecordBatch) -> None:
        self.records.append(batch)


async def _run(env: WorkflowEnvironment, script: Script, inp: Any) -> ChatOutcome:
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH))
    async with Worker(env.client, task_queue=queue, workflows=WORKFLOWS,
                      activities=[script.call_model, script.record_run], workflow_runner=runner):
        return await env.client.execute_workflow(
            "ChatWorkflow", inp, id=inp.request_id, task_queue=queue, result_type=ChatOutcome)


async def test_transient_is_retried_by_the_retry_policy(env: WorkflowEnvironment) -> None:
    script = Script({"a": ["transient", "transient", "ok"]})
    out = await _run(env, script, chat_input(f"r-{uuid.uuid4().hex}", spec("a"), spec("b")))
    assert out.negotiated_model == "a"
    assert script.calls_for("a") == [1, 2, 3]  # three attempts, counted by Temporal
    assert script.calls_for("b") == []
    assert out.attempts[-1].tries == 3
    assert len(script.records) == 1 and script.records[0].record.status == "ok"


async def test_retries_are_bounded_by_the_spec_then_failover(env: WorkflowEnvironment) -> None:
    script = Script({"a": ["transient"] * 10})
    out = await _run(env, script, chat_input(f"r-{uuid.uuid4().hex}", spec("a"), spec("b")))
    assert len(script.calls_for("a")) == RetrySpec().max_tries_per_model
    assert out.negotiated_model == "b"
    assert [a.outcome for a in out.attempts] == ["transient", "ok"]


@pytest.mark.parametrize("error_class", ["fatal", "rate_limited", "context_overflow"])
async def test_non_transient_classes_are_not_retried(env: WorkflowEnvironment,
                                                     error_class: str) -> None:
    script = Script({"a": [error_class]})
    big = spec("b", provider="p2", ctx=100_000)
    out = await _run(env, script, chat_input(f"r-{uuid.uuid4().hex}", spec("a"), big))
    assert script.calls_for("a") == [1]
    assert out.negotiated_model == "b"
    assert out.attempts[0].outcome == error_class
