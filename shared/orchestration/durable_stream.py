"""Durable streamed chat: the answer streamed through the run's event log, continued by the
next candidate when a provider fails mid-answer.

The workflow path of ``stream: true`` (the in-process fallback keeps
``shared/orchestration/stream.py``). The run owns an append-only event log (on Temporal:
the workflow's Workflow Stream); each provider attempt appends the answer's deltas to it,
and the gateway relays the log to the client as SSE, with the log offset as event id.

- Before the first delta, failover is as for any chat run: rank order, escalation by error
  class, transient failures retried on the same model by the runtime.
- After it, a failing provider is not retried: the next eligible candidate is asked to
  *continue* the text already in the log (``prefix``; how each provider is asked is in
  ``shared/providers/prefill.py``), so the client reads one uninterrupted answer.
- However it ends (completed, no one left to continue, cancelled), the log gets one
  ``end`` event (usage, the model that finished, or the error) and the run's record is
  written from the run summary like any other run (:func:`record_batch`).

Money and tokens are charged on what the providers produced (their reported usage, or
the streamed text's characters / 4 when they report none), never on what a client read.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from shared.contracts import Attempt, NormalizedResponse, ResponseMessage, Usage
from shared.errors import AllProvidersFailed, Cancelled, TokenHubError
from shared.orchestration.chat import ChatInput, ChatOutcome, elapsed_ms
from shared.orchestration.ports import Effects, ModelCall, ModelCallFailed
from shared.orchestration.records import RunSummary, record_batch
from shared.orchestration.streamlog import StreamCall, StreamEvent, StreamOptions, StreamPiece
from shared.routing.engine import escalation_order
from shared.routing.types import Candidate

__all__ = ["DurableStreamEffects", "StreamCall", "StreamEvent",
           "StreamOptions", "StreamPiece", "answer_of", "run_durable_stream"]


class DurableStreamEffects(Effects, Protocol):
    """A runtime that streams into a durable, offset-addressed event log."""

    async def stream_model(self, call: StreamCall) -> StreamPiece:
        """Stream ``call`` into the log; ModelCallFailed (its attempt carries the tokens
        produced) when the model fails for good."""
        ...

    def events(self) -> list[StreamEvent]:
        """The log so far."""
        ...

    def publish(self, event: StreamEvent) -> None:
        """Append ``event`` to the log."""
        ...

    async def settle(self) -> None:
        """Let readers blocked on the log see its last event before the run ends."""
        ...


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` when the provider reported none: characters / 4, rounded up."""
    return math.ceil(len(text) / 4)


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return estimate_tokens(orjson.dumps([m.get("content") for m in messages]).decode())


def answer_of(events: list[StreamEvent]) -> tuple[str, list[dict[str, Any]] | None, str | None]:
    """The text, merged tool calls and last finish reason of the log's deltas."""
    text: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish = None
    for ev in events:
        if ev.kind != "delta":
            continue
        text.append(ev.delta)
        finish = ev.finish_reason or finish
        for tc in ev.tool_calls or []:
            idx = int(tc.get("index", len(tools)))
            merged = tools.setdefault(idx, {"id": tc.get("id"), "type": "function",
                                            "function": {"name": "", "arguments": ""}})
            fn = tc.get("function") or {}
            merged["id"] = merged["id"] or tc.get("id")
            merged["function"]["name"] += fn.get("name") or ""
            merged["function"]["arguments"] += fn.get("arguments") or ""
    return "".join(text), [tools[i] for i in sorted(tools)] or None, finish


def _usage(attempts: list[Attempt]) -> Usage:
    return Usage(prompt_tokens=sum(a.input_tokens for a in attempts),
                 completion_tokens=sum(a.output_tokens for a in attempts))


@dataclass
class _InFlight:
    """The call streaming now (charged on what it produced if the run is cancelled)."""

    cand: Candidate | None = None
    prefix_chars: int = 0


async def run_durable_stream(inp: ChatInput, fx: DurableStreamEffects) -> ChatOutcome:
    """The stream orchestration of the workflow path (see the module docstring)."""
    start = fx.now()
    attempts: list[Attempt] = []
    flight = _InFlight()
    try:
        cand = await _stream_with_failover(inp, fx, attempts, start, flight)
    except asyncio.CancelledError:
        _charge_cancelled(inp, fx, attempts, flight)
        await _end_failed(inp, fx, attempts, start, Cancelled("the run was cancelled"))
        raise
    except TokenHubError as err:
        await _end_failed(inp, fx, attempts, start, err)
        raise
    summary = inp.summary(fx, attempts, start)
    await fx.record(record_batch(summary, fx.now(), request_body=inp.request_body))
    text, tools, finish = answer_of(fx.events())
    usage = _usage(attempts)
    model = cand.model
    fx.publish(StreamEvent(kind="end", model=model.id, provider=model.provider_id,
                           usage=usage, finish_reason=finish))
    await fx.settle()
    return ChatOutcome(
        request_id=inp.request_id, negotiated_model=model.id, provider=model.provider_id,
        estimated_cost_usd=cand.estimated_cost_usd, routing_reason=inp.route.reason,
        summary=summary,
        response=NormalizedResponse(
            message=ResponseMessage(content=text, tool_calls=tools), finish_reason=finish,
            usage=usage, cost_usd=summary.cost_usd))


async def _stream_with_failover(inp: ChatInput, fx: DurableStreamEffects,
                                attempts: list[Attempt], start: datetime,
                                flight: _InFlight) -> Candidate:
    remaining = list(inp.route.candidates)
    tried = 0
    while remaining and tried < inp.max_attempts:
        events = fx.events()
        prefix, _, _ = answer_of(events)
        # the latency budget bounds the wait for a first delta, not a long answer
        if tried and not prefix and elapsed_ms(fx, start) >= inp.policy.max_latency_ms:
            break
        cand = remaining.pop(0)
        tried += 1
        flight.cand, flight.prefix_chars = cand, len(prefix)
        call = StreamCall(call=ModelCall(request_id=inp.request_id, model=cand.model,
                                         messages=inp.messages, parameters=inp.parameters,
                                         step="stream"),
                          prefix=prefix, base_offset=len(events))
        try:
            piece = await fx.stream_model(call)
        except ModelCallFailed as failed:
            flight.cand = None
            a = failed.attempt
            a.cost_usd = cand.model.cost_usd(a.input_tokens, a.output_tokens)
            attempts.append(a)
            remaining = escalation_order(remaining, cand, a.outcome)
            continue
        flight.cand = None
        attempts.append(piece.attempt)
        return cand
    what = "to continue the stream" if answer_of(fx.events())[0] else "before streaming"
    raise AllProvidersFailed(f"all {tried} candidate model(s) failed {what}",
                             details={"attempts": [a.model_dump() for a in attempts]})


def _charge_cancelled(inp: ChatInput, fx: DurableStreamEffects, attempts: list[Attempt],
                      flight: _InFlight) -> None:
    """The call cut by a cancellation, charged on the text it put in the log (chars / 4):
    the provider billed it, whoever stopped reading."""
    cand = flight.cand
    if cand is None:
        return
    produced = answer_of(fx.events())[0][flight.prefix_chars:]
    if not produced:
        return
    tokens_in, tokens_out = prompt_tokens(inp.messages), estimate_tokens(produced)
    attempts.append(Attempt(
        model=cand.model.id, provider=cand.model.provider_id, outcome="ok", status=200,
        message="cancelled mid-answer", input_tokens=tokens_in, output_tokens=tokens_out,
        cost_usd=cand.model.cost_usd(tokens_in, tokens_out), step="stream"))


async def _end_failed(inp: ChatInput, fx: DurableStreamEffects, attempts: list[Attempt],
                      start: datetime, err: TokenHubError) -> None:
    """Record a failed stream and end its log with the error (in-band for a client that
    already has its 200 and some of the answer)."""
    summary: RunSummary = inp.summary(fx, attempts, start, err)
    if answer_of(fx.events())[0]:  # the client already has a 200: the failure is in-band
        summary = summary.model_copy(update={"http_status": 200})
    if isinstance(err, Cancelled):
        summary = summary.model_copy(update={"error_class": "cancelled"})
    err.details.setdefault("attempts", [a.model_dump() for a in summary.attempts])
    err.summary = summary
    await fx.record(record_batch(summary, fx.now(), request_body=inp.request_body))
    fx.publish(StreamEvent(kind="end", model=summary.model, provider=summary.provider,
                           usage=_usage(attempts),
                           error={"type": err.error_type, "message": err.message}))
    await fx.settle()
