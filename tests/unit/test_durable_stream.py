"""shared/orchestration/durable_stream.py with fake effects: continuation after a
mid-stream failure, failover before the first delta, nothing left to continue, cancel,
and usage counted when the provider reports none."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.stream import StreamActivities
from shared.contracts import Attempt
from shared.errors import AllProvidersFailed, Cancelled
from shared.orchestration.chat import ChatInput
from shared.orchestration.durable_stream import (
    StreamCall,
    StreamEvent,
    StreamPiece,
    answer_of,
    estimate_tokens,
    prompt_tokens,
    run_durable_stream,
)
from shared.orchestration.ports import ModelCallFailed, ModelCallResult, RecordBatch
from shared.orchestration.retry import RetrySpec
from shared.routing.types import ResolvedPolicy
from tests.factories import route, spec

SMALL = spec("small", "p-a", ctx=4096)
MEDIUM = spec("medium", "p-b", ctx=16000)
LARGE = spec("large", "p-c", ctx=200000)


@dataclass
class Script:
    """One scripted call: stream ``deltas``, then fail with ``fail`` (an error class) or
    finish; ``hang``: block after the deltas (to be cancelled)."""

    deltas: list[str]
    fail: str | None = None
    hang: bool = False
    tokens: tuple[int, int] | None = None  # the provider's usage, if it reports one


@dataclass
class FakeStreamEffects:
    """A DurableStreamEffects in memory: the log is a list; each model streams its script."""

    scripts: dict[str, list[Script]]
    log: list[StreamEvent] = field(default_factory=list)
    calls: list[StreamCall] = field(default_factory=list)
    records: list[RecordBatch] = field(default_factory=list)
    settled: int = 0
    clock: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    streaming: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def executor(self) -> Any:
        return "temporal"

    async def call_model(self, call: Any) -> ModelCallResult:
        raise AssertionError("a durable stream never calls call_model")

    async def record(self, batch: RecordBatch) -> float:
        self.records.append(batch)
        return 1.0

    def now(self) -> datetime:
        self.clock += timedelta(milliseconds=1)
        return self.clock

    def events(self) -> list[StreamEvent]:
        return list(self.log)

    def publish(self, event: StreamEvent) -> None:
        self.log.append(event)

    async def settle(self) -> None:
        self.settled += 1

    async def stream_model(self, call: StreamCall) -> StreamPiece:
        self.calls.append(call)
        model = call.call.model
        assert call.base_offset == len(self.log)  # offsets follow the log
        assert call.prefix == answer_of(self.log)[0]  # asked to continue what is there
        script = self.scripts[model.id].pop(0)
        for d in script.deltas:
            self.log.append(StreamEvent(delta=d, model=model.id, provider=model.provider_id))
        text = "".join(script.deltas)
        tin, tout = script.tokens or (prompt_tokens(call.call.messages), estimate_tokens(text))
        attempt = Attempt(model=model.id, provider=model.provider_id, outcome="ok",
                          status=200, input_tokens=tin, output_tokens=tout, step="stream")
        if script.hang:
            self.streaming.set()
            await asyncio.Event().wait()
        if script.fail is not None:
            # before its first delta a failed call produced (and is charged) nothing
            failed = attempt.model_copy(update={"outcome": script.fail, "status": 502,
                                                "input_tokens": tin if text else 0,
                                                "output_tokens": tout if text else 0})
            raise ModelCallFailed(failed)
        return StreamPiece(attempt=attempt, text=text, next_offset=len(self.log))


def _input(*models: Any) -> ChatInput:
    return ChatInput(request_id="req-1", messages=[{"role": "user", "content": "hi"}],
                     route=route(*(models or (SMALL, MEDIUM, LARGE))),
                     policy=ResolvedPolicy(), retry=RetrySpec())


def _end(fx: FakeStreamEffects) -> StreamEvent:
    last = fx.log[-1]
    assert last.kind == "end" and sum(ev.kind == "end" for ev in fx.log) == 1
    return last


async def test_a_mid_stream_failure_is_continued_by_the_next_model() -> None:
    fx = FakeStreamEffects({"small": [Script(["The quick ", "brown "], fail="transient")],
                            "medium": [Script(["fox ", "jumps."])]})
    out = await run_durable_stream(_input(), fx)
    assert out.response.message.content == "The quick brown fox jumps."
    assert [c.prefix for c in fx.calls] == ["", "The quick brown "]
    assert [c.base_offset for c in fx.calls] == [0, 2]
    assert out.negotiated_model == "medium"
    run = out.summary
    assert [a.outcome for a in run.attempts] == ["transient", "ok"]
    assert run.attempts[0].cost_usd > 0  # the cut call is charged for what it produced
    assert run.cost_usd == pytest.approx(sum(a.cost_usd for a in run.attempts))
    end = _end(fx)
    assert (end.model, end.error) == ("medium", None)
    assert end.usage is not None
    assert end.usage.completion_tokens == sum(a.output_tokens for a in run.attempts)
    [batch] = fx.records
    assert (batch.record.status, batch.record.model) == ("ok", "medium")
    assert fx.settled == 1


async def test_a_failure_before_the_first_delta_fails_over_without_a_prefix() -> None:
    fx = FakeStreamEffects({"small": [Script([], fail="rate_limited")],
                            "medium": [Script(["all ", "mine"])]})
    out = await run_durable_stream(_input(), fx)
    assert out.response.message.content == "all mine"
    assert [(c.call.model.id, c.prefix, c.base_offset) for c in fx.calls] == [
        ("small", "", 0), ("medium", "", 0)]
    assert [a.outcome for a in out.summary.attempts] == ["rate_limited", "ok"]
    assert out.summary.attempts[0].cost_usd == 0  # nothing produced, nothing billed
    assert all(ev.model == "medium" for ev in fx.log)


async def test_a_context_overflow_before_the_first_delta_escalates_by_context() -> None:
    fx = FakeStreamEffects({"small": [Script([], fail="context_overflow")],
                            "large": [Script(["big"])]})
    out = await run_durable_stream(_input(SMALL, MEDIUM, LARGE).model_copy(update={
        "route": route(SMALL, spec("tiny", "p-d", ctx=1024), LARGE)}), fx)
    assert [c.call.model.id for c in fx.calls] == ["small", "large"]
    assert out.response.message.content == "big"


async def test_no_one_left_to_continue_ends_the_log_with_the_in_band_error() -> None:
    fx = FakeStreamEffects({"small": [Script(["half "], fail="transient")],
                            "medium": [Script(["a bit "], fail="transient")]})
    with pytest.raises(AllProvidersFailed) as info:
        await run_durable_stream(_input(SMALL, MEDIUM), fx)
    assert "to continue the stream" in info.value.message
    end = _end(fx)
    assert end.error is not None and end.error["type"] == "all_providers_failed"
    assert answer_of(fx.log)[0] == "half a bit "
    [batch] = fx.records
    # the client already had its 200 and part of the answer: the failure is in-band
    assert (batch.record.status, batch.record.http_status) == ("error", 200)
    assert batch.record.cost_usd > 0


async def test_every_model_failing_before_a_delta_is_an_error_status() -> None:
    fx = FakeStreamEffects({"small": [Script([], fail="fatal")],
                            "medium": [Script([], fail="fatal")]})
    with pytest.raises(AllProvidersFailed) as info:
        await run_durable_stream(_input(SMALL, MEDIUM), fx)
    assert "before streaming" in info.value.message
    [batch] = fx.records
    assert (batch.record.status, batch.record.http_status) == ("error", 502)
    assert _end(fx).error is not None


async def test_a_cancelled_run_is_charged_on_the_text_it_produced() -> None:
    fx = FakeStreamEffects({"small": [Script(["abcdefgh" * 5], hang=True)]})
    task = asyncio.create_task(run_durable_stream(_input(), fx))
    await fx.streaming.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [batch] = fx.records
    assert (batch.record.status, batch.record.error_class) == ("error", "cancelled")
    assert batch.record.output_tokens == estimate_tokens("abcdefgh" * 5) == 10
    assert batch.record.cost_usd > 0
    end = _end(fx)
    assert end.error is not None and end.error["type"] == Cancelled.error_type


async def test_usage_is_counted_from_the_text_when_the_provider_reports_none() -> None:
    messages = [{"role": "user", "content": "count me"}]
    tin, tout = StreamActivities._tokens(messages, "", ["abcd", "efgh", "ij"], None)
    assert (tin, tout) == (prompt_tokens(messages), 3)  # 10 characters / 4, rounded up
    # text an earlier (dead) try appended is charged as text on top of the usage
    _, tout = StreamActivities._tokens(messages, "x" * 8, ["abcd"], None)
    assert tout == 1 + 2


async def test_the_providers_usage_wins_when_it_reports_one() -> None:
    from shared.contracts import Usage

    messages = [{"role": "user", "content": "count me"}]
    usage = Usage(prompt_tokens=11, completion_tokens=7)
    assert StreamActivities._tokens(messages, "", ["abcd"], usage) == (11, 7)
    fx = FakeStreamEffects({"small": [Script(["x"], tokens=(11, 7))]})
    out = await run_durable_stream(_input(), fx)
    assert (out.response.usage.prompt_tokens, out.response.usage.completion_tokens) == (11, 7)
