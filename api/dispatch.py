"""Run an orchestration on the workflow path or in-process (SPEC §2).

Workflow first; in-process when Temporal is disabled, unreachable or its circuit open.
The runtime that ran a run stamps its summary (``executor``), so the dispatcher only
chooses; it keeps no books of its own besides the fallback counter and the circuit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.common import TypedSearchAttributes

from api.circuit import CircuitBreaker, CircuitState, Prober
from api.responses import run_link
from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from engine import attributes
from engine.names import CHAT_WORKFLOW, PLAN_WORKFLOW
from shared.errors import TokenHubError
from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
from shared.orchestration.local import LocalEffects
from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
from shared.orchestration.ports import Effects, RecordBatch
from shared.orchestration.records import RunSummary
from shared.store.idempotency import IdempotencyStore

log = logging.getLogger("tokenhub.dispatch")


async def _never() -> bool:
    return False


def _mark_replayed(result: BaseModel | TokenHubError) -> None:
    """A repeat answered from the first run: its summary says so (not charged again)."""
    summary = getattr(result, "summary", None)
    if isinstance(summary, dict):
        summary = RunSummary.model_validate(summary)
        if isinstance(result, TokenHubError):
            result.summary = summary
    if isinstance(summary, RunSummary):
        summary.replayed = True


In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


def chat_tags(inp: ChatInput) -> tuple[TypedSearchAttributes, dict[str, Any]]:
    """The search attributes and memo a chat (or streamed chat) run starts with."""
    first = inp.route.candidates[0].model
    attrs = attributes.initial(kind=inp.kind, mode=inp.policy.mode, model=first.id,
                               provider=first.provider_id, api_key_id=inp.api_key_id)
    memo = {"kind": inp.kind, "mode": inp.policy.mode, "messages": len(inp.messages),
            "candidates": [c.model.id for c in inp.route.candidates[:5]],
            "size_bucket": inp.size_bucket}
    return attrs, memo


def plan_tags(inp: PlanInput) -> tuple[TypedSearchAttributes, dict[str, Any]]:
    """The search attributes and memo a plan run starts with."""
    first = inp.primary.candidates[0].model
    attrs = attributes.initial(kind="plan", mode=inp.mode, model=first.id,
                               provider=first.provider_id, api_key_id=inp.api_key_id)
    memo = {"kind": "plan", "mode": inp.mode, "iterations": inp.iterations,
            "voters": inp.voters, "messages": len(inp.messages)}
    return attrs, memo


class Dispatcher:
    def __init__(self, state: AppState, temporal: TemporalRunner | None = None) -> None:
        self.state = state
        self.temporal = temporal
        self.local = LocalEffects(adapters=lambda pid: state.registry.get(pid),
                                  recorder=self._record,
                                  retry=state.retry, rng=state.rng)
        s = state.settings
        metrics = state.metrics
        self.breaker = CircuitBreaker(
            failures=s.temporal_circuit_failures,
            on_change=lambda st: metrics.circuit_state.set(int(st)))
        metrics.circuit_state.set(int(CircuitState.CLOSED))
        self.prober = Prober(
            self.breaker, temporal.probe if temporal is not None else _never,
            cooldown_s=s.temporal_circuit_cooldown_s,
            on_probe=lambda ok: metrics.temporal_probes.labels("ok" if ok else "failed").inc())
        self.unavailable = 0  # requests that tried Temporal and found it unreachable
        self.idempotency = IdempotencyStore(state.sessionmaker,
                                            window_s=s.idempotency_window_s)

    async def temporal_status(self) -> str:
        """For /readyz: ``ok``, ``down, local fallback`` or ``disabled`` (local only)."""
        if self.temporal is None:
            return "disabled"
        if self.breaker.allow() and await self.temporal.probe():
            return "ok"
        return "down, local fallback"

    async def aclose(self) -> None:
        await self.prober.aclose()

    async def _record(self, batch: RecordBatch) -> None:
        await self.state.log_writer.submit_paced(batch.record, batch.rewards)

    async def _run(self, workflow: str, fn: Callable[[In, Effects], Awaitable[Out]],
                   inp: In, *, result_type: type[Out], request_id: str, kind: str,
                   attrs: TypedSearchAttributes, memo: dict[str, Any],
                   fingerprint: str | None) -> Out:
        if fingerprint is not None:
            memo = {**memo, "fingerprint": fingerprint}
        if self.temporal is not None:
            if self.breaker.allow():
                try:
                    out = await self.temporal.run(workflow, inp, request_id=request_id,
                                                  result_type=result_type,
                                                  search_attributes=attrs, memo=memo,
                                                  fingerprint=fingerprint)
                except TemporalUnavailable as exc:
                    self.unavailable += 1
                    self.breaker.failure()
                    self.prober.ensure()  # probes off the request path while open
                    log.warning("Temporal unavailable, running %s locally: %s", request_id, exc)
                except TokenHubError as err:
                    self.breaker.success()  # the run failed, on Temporal
                    err.extra_headers.setdefault("X-TokenHub-Executor", "temporal")
                    err.extra_headers.update(run_link(self.state.settings, request_id,
                                                      "temporal"))
                    raise
                else:
                    self.breaker.success()
                    return out
            self.state.metrics.temporal_fallback.inc()
        try:
            if fingerprint is None:
                return await fn(inp, self.local)
            return await self.idempotency.run(  # a client-chosen id: once, in any process
                request_id=request_id, fp=fingerprint, kind=kind, result_type=result_type,
                run=lambda: fn(inp, self.local), replayed=_mark_replayed)
        except TokenHubError as err:
            err.extra_headers.setdefault("X-TokenHub-Executor", "local")
            raise

    async def run_chat(self, inp: ChatInput) -> ChatOutcome:
        attrs, memo = chat_tags(inp)
        return await self._run(CHAT_WORKFLOW, run_chat, inp, result_type=ChatOutcome,
                               request_id=inp.request_id, kind=inp.kind, attrs=attrs,
                               memo=memo, fingerprint=inp.fingerprint)

    async def run_plan(self, inp: PlanInput) -> PlanOutcome:
        attrs, memo = plan_tags(inp)
        return await self._run(PLAN_WORKFLOW, run_plan, inp, result_type=PlanOutcome,
                               request_id=inp.request_id, kind="plan", attrs=attrs,
                               memo=memo, fingerprint=inp.fingerprint)
