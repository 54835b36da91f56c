"""Streamed chat: failover before the first chunk, then the answer relayed as it comes.

Before the first chunk the stream fails over like a chat run (rank order, escalation by
error class, bounded in count and time). Once a model has produced its first chunk the
answer is committed to it: a failure after that ends the stream (the transport says so
in-band). However the stream ends — completed, cut by the provider, or abandoned by the
client — the run's record is written once, from the same run summary as any other run.

What a stream is charged (issue 13): the tokens the provider produced, whether or not the
client read them. Upstreams are asked for usage in streams (OpenAI-compatible
``stream_options.include_usage``; Anthropic sends it in message_start/message_delta) and
the last figures reported win. Where a provider reports none (llama.cpp and other
OpenAI-compatible servers that ignore ``stream_options``, or a stream that ends before
its usage event), the missing side is counted like the routing estimate: the prompt's
characters / 4, and the characters of every chunk received from the upstream / 4
(shared/routing/estimate.py). The client's own usage chunk reports the same figures.

A client that hangs up stops the upstream: its answer is closed at once (a "stop
generating" button then stops the spending too) and the run is charged the prompt plus
everything the upstream had sent until then. The record and the budget settlement run in
their own task, so the hang-up's cancellation of the response cannot cut them short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson

from shared.contracts import Attempt, Executor, OutputFormat, StreamChunk, Usage
from shared.errors import AllProvidersFailed, OutputValidationFailed, ProviderError
from shared.orchestration.calls import failed_attempt
from shared.orchestration.chat import (
    ChatInput,
    budget_left_s,
    elapsed_ms,
    fail_run,
    failover,
)
from shared.orchestration.ports import ModelCall, OpenedStream, StreamingEffects
from shared.orchestration.records import RunSummary, write_record
from shared.routing.estimate import estimate_wire_tokens, tokens_for_chars
from shared.routing.output import ThinkStripper, validate_json_output
from shared.routing.types import Candidate, ModelSpec

OnFinish = Callable[[RunSummary], Awaitable[None]]
log = logging.getLogger("tokenhub.stream")


async def open_chat_stream(inp: ChatInput, fx: StreamingEffects) -> ChatStream:
    """The first candidate that yields a first chunk; AllProvidersFailed (recorded) if none."""
    start = fx.now()
    attempts: list[Attempt] = []

    async def open_one(cand: Candidate) -> tuple[OpenedStream, datetime]:
        opened_at = fx.now()
        return await fx.open_stream(ModelCall(
            request_id=inp.request_id, model=cand.model, messages=inp.messages,
            parameters=inp.parameters, step="stream",
            timeout_s=budget_left_s(fx, start, inp.policy))), opened_at

    try:
        cand, (opened, opened_at) = await failover(
            fx, route=inp.route, policy=inp.policy, max_attempts=inp.max_attempts,
            attempts=attempts, what="before streaming", attempt=open_one)
    except AllProvidersFailed as err:
        await fail_run(fx, err, inp.summary(fx, attempts, start, err), inp.request_body,
                       inp.started_at)
        raise
    return ChatStream(inp, fx, cand, opened, attempts=attempts, start=start,
                      opened_at=opened_at)


class StreamShaper:
    """``output_format`` on a stream: ``strip_think`` as the text flows (tags split across
    chunks included, :class:`ThinkStripper`); a ``json`` answer is checked at its end (the
    client has had a 200 and the text by then, so a failure is reported in-band)."""

    def __init__(self, fmt: OutputFormat | None) -> None:
        self._fmt = fmt
        self._stripper = ThinkStripper() if fmt is not None and fmt.strip_think else None
        self._text: list[str] | None = [] if fmt is not None and fmt.type == "json" else None

    def shape(self, chunk: StreamChunk) -> StreamChunk:
        if self._stripper is not None:
            delta = self._stripper.feed(chunk.delta)
            if chunk.finish_reason:  # the text is over: flush what was held back
                delta += self._stripper.finish()
                self._stripper = None
            chunk = chunk.model_copy(update={"delta": delta})
        if self._text is not None:
            self._text.append(chunk.delta)
        return chunk

    def close(self) -> StreamChunk | None:
        """What is still held back when the upstream ended without a finish reason."""
        stripper, self._stripper = self._stripper, None
        tail = stripper.finish() if stripper is not None else ""
        if not tail:
            return None
        if self._text is not None:
            self._text.append(tail)
        return StreamChunk(delta=tail)

    def validate(self) -> OutputValidationFailed | None:
        if self._text is None or self._fmt is None:
            return None
        try:
            validate_json_output("".join(self._text), self._fmt.json_schema)
        except OutputValidationFailed as err:
            return err
        return None


class ChatStream:
    """A committed stream: iterate :meth:`chunks`; the record is written when it ends."""

    def __init__(self, inp: ChatInput, fx: StreamingEffects, cand: Candidate,
                 opened: OpenedStream, *, attempts: list[Attempt], start: datetime,
                 opened_at: datetime) -> None:
        self.inp, self._fx, self.candidate, self._opened = inp, fx, cand, opened
        self._attempts, self._start, self._opened_at = attempts, start, opened_at
        self.usage = Usage()  # as reported by the provider (the latest non-zero figures)
        self.error: ProviderError | None = None
        self.output_error: OutputValidationFailed | None = None  # reported in-band
        self.summary: RunSummary | None = None
        self.on_finish: list[OnFinish] = []
        # where the finishing task is kept alive (the gateway's, awaited at shutdown)
        self.tasks: set[asyncio.Task[Any]] = set()
        self._out_chars = 0  # characters received from the upstream
        self._detached = False  # finished in a task nobody awaits (the client hung up)
        # the answer as the client received it (for the response cache); tool calls arrive
        # as fragments, so an answer with any is not kept
        self._text: list[str] = []
        self._finish_reason: str | None = None
        self._had_tools = False
        self.completed = False  # ended normally and passed output validation
        self.cache: str | None = None  # "miss" when the gateway's response cache applies

    @property
    def model(self) -> ModelSpec:
        return self.candidate.model

    @property
    def executor(self) -> Executor:
        return self._fx.executor

    def _take(self, chunk: StreamChunk) -> None:
        if chunk.usage is not None:
            u, new = self.usage, chunk.usage
            self.usage = Usage(prompt_tokens=new.prompt_tokens or u.prompt_tokens,
                               completion_tokens=new.completion_tokens or u.completion_tokens)
        self._out_chars += len(chunk.delta)
        if chunk.tool_calls:
            self._out_chars += len(orjson.dumps(chunk.tool_calls))

    def _sent(self, chunk: StreamChunk) -> StreamChunk:
        self._text.append(chunk.delta)
        self._finish_reason = chunk.finish_reason or self._finish_reason
        self._had_tools = self._had_tools or bool(chunk.tool_calls)
        return chunk

    def answer(self) -> tuple[str, str | None] | None:
        """(text, finish reason) of a completed text answer, else None."""
        if not self.completed or self._had_tools:
            return None
        return "".join(self._text), self._finish_reason

    def charged_usage(self) -> Usage:
        """The usage the run is charged and reported with: the provider's figures, and
        characters / 4 for what it did not report."""
        prompt = self.usage.prompt_tokens or estimate_wire_tokens(self.inp.messages)
        completion = self.usage.completion_tokens or (
            tokens_for_chars(self._out_chars) if self._out_chars else 0)
        return Usage(prompt_tokens=prompt, completion_tokens=completion)

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        """Every chunk, the first included, shaped by the request's ``output_format``.
        Stops at the end of the answer or at a mid-stream failure (then :attr:`error`
        says why); an answer that fails its JSON check sets :attr:`output_error`. Closing
        it early (the client hung up) stops the upstream; the run is finished either way,
        charged on what the upstream produced (counted before shaping)."""
        shaper = StreamShaper(self.inp.output_format)
        ended = False
        try:
            chunk: StreamChunk | None = self._opened.first
            while chunk is not None:
                self._take(chunk)
                yield self._sent(shaper.shape(chunk))
                chunk = await anext(self._opened.rest, None)
            tail = shaper.close()
            if tail is not None:
                yield self._sent(tail)
            self.output_error = shaper.validate()
            self.completed = self.output_error is None
            ended = True
        except ProviderError as err:
            self.error = err
            ended = True
        finally:
            self._detached = not ended
            task = asyncio.ensure_future(self.finish())
            self.tasks.add(task)
            task.add_done_callback(self._finished)
            if ended:  # the caller reports usage next: wait (a cancellation leaves it running)
                await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        exc = None if task.cancelled() else task.exception()  # retrieved either way
        if exc is not None and self._detached:  # nobody awaits it: say so here
            log.error("finishing stream %s failed: %r", self.inp.request_id, exc)

    async def finish(self) -> RunSummary:
        """Close the upstream and write the record (once, however the stream ended)."""
        if self.summary is not None:
            return self.summary
        await self._opened.aclose()
        fx, model, usage = self._fx, self.model, self.charged_usage()
        latency = elapsed_ms(fx, self._opened_at)
        cost = model.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        call = ModelCall(request_id=self.inp.request_id, model=model, messages=self.inp.messages,
                         step="stream")
        if self.error is not None:
            last = failed_attempt(call, self.error, tries=self._opened.tries, latency_ms=latency)
            last.cost_usd = cost  # what the upstream produced before it failed is billed
            last.input_tokens, last.output_tokens = usage.prompt_tokens, usage.completion_tokens
        else:
            last = Attempt(model=model.id, provider=model.provider_id, outcome="ok", status=200,
                           latency_ms=round(latency, 3), tries=self._opened.tries,
                           cost_usd=cost, input_tokens=usage.prompt_tokens,
                           output_tokens=usage.completion_tokens, step="stream")
        self._attempts.append(last)
        summary = self.inp.summary(fx, self._attempts, self._start)
        failed = self.error.error_class if self.error is not None else \
            self.output_error.error_type if self.output_error is not None else None
        if failed is not None:  # the client already has a 200: the failure is in-band
            summary = summary.model_copy(update={
                "status": "error", "error_class": failed,
                "model": model.id, "provider": model.provider_id})
        self.summary = summary  # written once, even if finish() is re-entered meanwhile
        self.summary = summary = await write_record(
            fx, summary, started_at=self.inp.started_at, request_body=self.inp.request_body)
        for hook in self.on_finish:
            await hook(summary)
        return summary
