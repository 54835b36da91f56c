"""Run an orchestration on the workflow path or in-process, and say which ran (SPEC §2)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio.common import TypedSearchAttributes

from api.circuit import CircuitBreaker, CircuitState
from api.state import AppState
from api.temporal import TemporalRunner, TemporalUnavailable
from shared.contracts import Attempt, Executor
from shared.errors import TokenHubError
from shared.orchestration.chat import ChatInput, ChatOutcome, run_chat
from shared.orchestration.local import LocalEffects
from shared.orchestration.plan import PlanInput, PlanOutcome, run_plan
from shared.orchestration.ports import Effects, RecordBatch
from workflows import attributes

log = logging.getLogger("tokenhub.dispatch")


In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class Dispatcher:
    """Workflow first; in-process when Temporal is disabled, unreachable or its circuit open."""

    def __init__(self, state: AppState, temporal: TemporalRunner | None = None) -> None:
        self.state = state
        self.temporal = temporal
        self.local = LocalEffects(adapters=lambda pid: state.registry.get(pid),
                                  recorder=self._record,
                                  retry=state.retry, rng=state.rng)
        s = state.settings
        metrics = state.metrics
        self.breaker = CircuitBreaker(
            failures=s.temporal_circuit_failures, cooldown_s=s.temporal_circuit_cooldown_s,
            on_change=lambda st: metrics.circuit_state.set(int(st)))
        metrics.circuit_state.set(int(CircuitState.CLOSED))

    async def _record(self, batch: RecordBatch) -> None:
        await self.state.log_writer.submit_paced(batch.record, batch.rewards)

    async def _execute(self, workflow: str, fn: Callable[[In, Effects], Awaitable[Out]],
                       inp: In, *, result_type: type[Out], request_id: str,
                       attrs: TypedSearchAttributes,
                       memo: dict[str, Any]) -> tuple[Out, Executor]:
        if self.temporal is not None:
            if self.breaker.allow():
                try:
                    out = await self.temporal.run(workflow, inp, request_id=request_id,
                                                  result_type=result_type,
                                                  search_attributes=attrs, memo=memo)
                except TemporalUnavailable as exc:
                    self.breaker.failure()
                    log.warning("Temporal unavailable, running %s locally: %s", request_id, exc)
                except TokenHubError:
                    self.breaker.success()
                    raise
                else:
                    self.breaker.success()
                    return out, "temporal"
            self.state.metrics.temporal_fallback.inc()
        return await fn(inp, self.local), "local"

    async def _run(self, workflow: str, fn: Callable[[In, Effects], Awaitable[Out]], inp: In,
                   *, result_type: type[Out], request_id: str, attrs: TypedSearchAttributes,
                   memo: dict[str, Any]) -> tuple[Out, Executor]:
        executor: Executor = "local"
        try:
            out, executor = await self._execute(workflow, fn, inp, result_type=result_type,
                                                request_id=request_id, attrs=attrs, memo=memo)
        except TokenHubError as err:
            err.extra_headers["X-TokenHub-Executor"] = executor
            self._observe([Attempt.model_validate(a) for a in err.details.get("attempts", [])],
                          executor)
            raise
        self._observe(getattr(out, "attempts", []), executor)
        return out, executor

    def _observe(self, attempts: list[Attempt], executor: Executor) -> None:
        self.state.observe(attempts)
        m = self.state.metrics
        m.executor.labels(executor).inc()
        if len(attempts) > 1 and attempts[-1].outcome == "ok":
            m.failovers.labels("chat").inc()
        for a in attempts:
            if a.outcome == "ok":
                m.cost.labels(a.model).inc(a.cost_usd)

    async def run_chat(self, inp: ChatInput) -> tuple[ChatOutcome, Executor]:
        first = inp.route.candidates[0].model
        attrs = attributes.initial(kind=inp.kind, mode=inp.policy.mode, model=first.id,
                                   provider=first.provider_id, api_key_id=inp.api_key_id)
        memo = {"kind": inp.kind, "mode": inp.policy.mode, "messages": len(inp.messages),
                "candidates": [c.model.id for c in inp.route.candidates[:5]],
                "size_bucket": inp.size_bucket}
        out, executor = await self._run("ChatWorkflow", run_chat, inp, result_type=ChatOutcome,
                                        request_id=inp.request_id, attrs=attrs, memo=memo)
        usage = out.response.usage
        self.state.metrics.tokens.labels(out.negotiated_model, "input").inc(usage.prompt_tokens)
        self.state.metrics.tokens.labels(out.negotiated_model, "output").inc(
            usage.completion_tokens)
        return out, executor

    async def run_plan(self, inp: PlanInput) -> tuple[PlanOutcome, Executor]:
        first = inp.primary.candidates[0].model
        attrs = attributes.initial(kind="plan", mode=inp.mode, model=first.id,
                                   provider=first.provider_id, api_key_id=inp.api_key_id)
        memo = {"kind": "plan", "mode": inp.mode, "iterations": inp.iterations,
                "voters": inp.voters, "messages": len(inp.messages)}
        return await self._run("PlanWorkflow", run_plan, inp, result_type=PlanOutcome,
                               request_id=inp.request_id, attrs=attrs, memo=memo)
