"""One orchestration, two runtimes: the same scenarios through LocalEffects and through
Temporal (real dev server, real activities), against the same fake provider, must give
equal results and equal provider-call counts."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from engine.streams import read_log
from shared.config import Settings, load_catalog
from shared.contracts import StreamChunk
from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
from shared.orchestration.local import LocalEffects
from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
from shared.orchestration.ports import RecordBatch
from shared.orchestration.retry import RetrySpec
from shared.orchestration.stream import open_chat_stream
from shared.orchestration.streamlog import StreamOptions
from shared.providers.registry import ProviderRegistry
from shared.routing.types import ResolvedPolicy
from tests.factories import route, spec
from tests.fake_provider import FakeProvider
from worker.build import WORKFLOWS, build_worker, sandboxed_runner

pytestmark = pytest.mark.temporal
FAST = RetrySpec(initial_backoff_s=0.01, max_backoff_s=0.02, jitter=0)

SMALL = spec("small", "fake-openai", upstream="small-up", ctx=4096)
MEDIUM = spec("medium", "fake-vllm", upstream="medium-up", ctx=16000)
CLAUDE = spec("claude", "fake-anthropic", upstream="claude-up", ctx=200000)


def chat(*steps: tuple[str, list[dict[str, Any]]],
         retry: RetrySpec = FAST) -> tuple[ChatInput, list[Any]]:
    inp = ChatInput(request_id="", messages=[{"role": "user", "content": "parity"}],
                    route=route(SMALL, MEDIUM, CLAUDE), policy=ResolvedPolicy(), retry=retry)
    return inp, list(steps)


FAST_LOCAL = dataclasses.replace(FAST, local_activities=True)  # the default for chat runs


def plan(mode: str, **kw: Any) -> tuple[PlanInput, list[Any]]:
    inp = PlanInput(request_id="", mode=mode, messages=[{"role": "user", "content": "parity"}],
                    primary=route(SMALL, MEDIUM, CLAUDE), review=route(CLAUDE, MEDIUM),
                    policy=ResolvedPolicy(), retry=FAST, **kw)
    return inp, []


SCENARIOS = {
    "chat-ok": chat(),
    "chat-5xx-retried": chat(("small-up", [{"status": 500}, {"status": 502}])),
    "chat-429-failover": chat(("small-up", [{"status": 429, "retry_after": 0}])),
    "chat-context-escalation": chat(("small-up", [{"kind": "context_overflow"}])),
    "chat-fatal-then-transient": chat(("small-up", [{"status": 401}]),
                                      ("medium-up", [{"status": 503}] * 3)),
    "chat-ok-local-activity": chat(retry=FAST_LOCAL),
    "chat-5xx-retried-local-activity": chat(("small-up", [{"status": 500}, {"status": 502}]),
                                            retry=FAST_LOCAL),
    "chat-failover-local-activity": chat(("small-up", [{"status": 401}]),
                                         ("medium-up", [{"status": 503}] * 3),
                                         retry=FAST_LOCAL),
    "plan-adversarial": plan("adversarial", iterations=2),
    "plan-vote": plan("vote", voters=3),
    "plan-refine": plan("refine", iterations=2),
    "plan-planning": plan("planning"),
}


@pytest.fixture
async def registry(fake: FakeProvider, config_file: Path) -> AsyncIterator[ProviderRegistry]:
    settings = Settings(_env_file=None, config=config_file)  # type: ignore[call-arg]
    reg = ProviderRegistry(load_catalog(settings), settings)
    yield reg
    await reg.aclose()


def _normalise(out: BaseModel) -> dict[str, Any]:
    data = out.model_dump(mode="json", exclude={"request_id"})
    run = data["summary"]
    for key in ("request_id", "latency_ms", "executor"):  # differ by runtime, on purpose
        run.pop(key)
    for a in run["attempts"]:
        a.pop("latency_ms")
    return data


async def _noop(_: RecordBatch) -> None:
    return None


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_local_and_temporal_agree(name: str, fake: FakeProvider,
                                        registry: ProviderRegistry,
                                        temporal_env: WorkflowEnvironment) -> None:
    template, steps = SCENARIOS[name]
    is_chat = isinstance(template, ChatInput)
    results, counts = [], []
    records: list[RecordBatch] = []

    async def keep(batch: RecordBatch) -> None:
        records.append(batch)

    for runtime in ("local", "temporal"):
        fake.reset()
        for model, script in steps:
            fake.script(model, script)
        inp = template.model_copy(update={"request_id": f"{name}-{uuid.uuid4().hex}"})
        if runtime == "local":
            fx = LocalEffects(adapters=registry.get, recorder=keep, retry=FAST)
            out: BaseModel = await (run_chat(inp, fx) if is_chat  # type: ignore[arg-type]
                                    else run_plan(inp, fx))  # type: ignore[arg-type]
        else:
            queue = f"parity-{uuid.uuid4().hex[:8]}"
            async with build_worker(temporal_env.client, task_queue=queue,
                                    lookup=registry.get, writer=keep, attempt_timeout_s=30):
                out = await temporal_env.client.execute_workflow(
                    "ChatWorkflow" if is_chat else "PlanWorkflow", inp, id=inp.request_id,
                    task_queue=queue, result_type=ChatOutcome if is_chat else PlanOutcome)
            await _replay_in_sandbox(temporal_env, inp.request_id)
        results.append(_normalise(out))
        counts.append(sorted((c["model"], c["completed"]) for c in fake.calls()))
    assert results[0] == results[1]
    assert counts[0] == counts[1]
    assert len(records) == 2
    assert _record(records[0]) == _record(records[1])
    # each record says which runtime really ran it
    assert [r.record.executor for r in records] == ["local", "temporal"]


STREAM_SCENARIOS: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {
    "stream-ok": [],
    "stream-5xx-retried": [("small-up", [{"status": 500}])],
    "stream-fatal-failover": [("small-up", [{"status": 401}])],
}


def _visible(chunks: list[StreamChunk]) -> list[tuple[str, str | None]]:
    """The chunks a client sees: the first (it carries the role) and every one with text,
    tool calls or a finish reason (the durable log keeps exactly these)."""
    return [(c.delta, c.finish_reason) for i, c in enumerate(chunks)
            if i == 0 or c.delta or c.tool_calls or c.finish_reason]


@pytest.mark.parametrize("name", list(STREAM_SCENARIOS))
async def test_a_stream_gives_the_same_chunks_on_both_runtimes(
        name: str, fake: FakeProvider, registry: ProviderRegistry,
        temporal_env: WorkflowEnvironment) -> None:
    """The local stream (shared/orchestration/stream.py) and the durable one (a ChatWorkflow
    whose call streams into its Workflow Stream, on the shared queue) give the same chunk
    sequence, text and record; the durable run's history replays under the sandbox."""
    template, _ = chat()
    template = template.model_copy(update={"kind": "stream"})
    seqs, texts, records = [], [], []

    async def keep(batch: RecordBatch) -> None:
        records.append(batch)

    for runtime in ("local", "temporal"):
        fake.reset()
        fake.set_default(chunks=6)
        for model, script in STREAM_SCENARIOS[name]:
            fake.script(model, script)
        inp = template.model_copy(update={"request_id": f"{name}-{uuid.uuid4().hex}"})
        if runtime == "local":
            fx = LocalEffects(adapters=registry.get, recorder=keep, retry=FAST)
            stream = await open_chat_stream(inp, fx)
            seq = _visible([c async for c in stream.chunks()])
            text = "".join(d for d, _ in seq)
        else:
            queue = f"parity-{uuid.uuid4().hex[:8]}"
            run = inp.model_copy(update={"stream": StreamOptions()})
            async with build_worker(temporal_env.client, task_queue=queue,
                                    lookup=registry.get, writer=keep, attempt_timeout_s=30):
                out = await temporal_env.client.execute_workflow(
                    "ChatWorkflow", run, id=inp.request_id, task_queue=queue,
                    result_type=ChatOutcome)
                handle = temporal_env.client.get_workflow_handle(inp.request_id)
                log = [ev for _, ev in await read_log(temporal_env.client, handle)]
            assert log[-1].kind == "end" and log[-1].error is None
            seq = [(ev.delta, ev.finish_reason) for ev in log if ev.kind == "delta"]
            text = out.response.message.content
            await _replay_in_sandbox(temporal_env, inp.request_id)
        seqs.append(seq)
        texts.append(text)
    assert seqs[0] == seqs[1]
    assert texts[0] == texts[1] == "".join(d for d, _ in seqs[0]) != ""
    assert len(records) == 2
    assert _record(records[0]) == _record(records[1])
    assert [r.record.executor for r in records] == ["local", "temporal"]


async def test_a_stream_continued_mid_answer_replays_in_the_sandbox(
        fake: FakeProvider, registry: ProviderRegistry,
        temporal_env: WorkflowEnvironment) -> None:
    """A continuation after a mid-stream cut has no local counterpart (the local stream
    ends with the in-band error); its history must still replay under the sandbox."""
    template, _ = chat()
    answer = "one two three four five six seven eight nine ten"
    fake.set_default(chunks=6, content=answer)
    # paced, so the deltas before the cut are read before the connection is reset
    fake.script("small-up", [{"kind": "cut_stream", "after_chunks": 2, "gap_ms": 30}])
    inp = template.model_copy(update={"request_id": f"stream-cut-{uuid.uuid4().hex}",
                                      "kind": "stream", "stream": StreamOptions()})
    queue = f"parity-{uuid.uuid4().hex[:8]}"
    async with build_worker(temporal_env.client, task_queue=queue, lookup=registry.get,
                            writer=_noop, attempt_timeout_s=30):
        out = await temporal_env.client.execute_workflow(
            "ChatWorkflow", inp, id=inp.request_id, task_queue=queue, result_type=ChatOutcome)
    assert [a.outcome for a in out.summary.attempts] == ["transient", "ok"], fake.calls()
    assert out.response.message.content == answer, fake.calls()
    await _replay_in_sandbox(temporal_env, inp.request_id)


async def _replay_in_sandbox(env: WorkflowEnvironment, workflow_id: str) -> None:
    """Workers run workflow code unsandboxed (TOKENHUB_TEMPORAL_WORKFLOW_SANDBOX=false);
    replaying each scenario's history under Temporal's sandbox is what checks that the
    code stays deterministic and sandbox-clean."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=sandboxed_runner(),
                        data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def _record(batch: RecordBatch) -> dict[str, Any]:
    return batch.record.model_dump(mode="json", include={
        "kind", "mode", "model", "provider", "input_tokens", "output_tokens", "status",
        "http_status", "error_class", "cost_usd"})
