"""Multi-model orchestrations for ``/v1/plan``: adversarial, vote, refine, planning."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.contracts import Attempt, PlanMode
from shared.errors import AllProvidersFailed, TokenHubError
from shared.orchestration import prompts
from shared.orchestration.chat import (
    Route,
    StepResult,
    complete_with_failover,
    elapsed_ms,
    fail_run,
)
from shared.orchestration.ports import Effects
from shared.orchestration.progress import AsyncRun
from shared.orchestration.records import RunSummary, SizeBucket, summarize, write_record
from shared.orchestration.retry import RetrySpec
from shared.routing.output import validate_json_output
from shared.routing.types import ResolvedPolicy

Role = Literal["primary", "reviewer", "judge"]


class PlanInput(BaseModel):
    request_id: str
    mode: PlanMode
    iterations: int = Field(default=1, ge=0, le=10)
    messages: list[dict[str, Any]] = Field(min_length=1)
    primary: Route
    review: Route
    voters: int = Field(default=3, ge=1, le=10)
    return_plan_only: bool = False
    output_schema: dict[str, Any] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)  # every step
    # per role ("primary", "reviewer", "judge"): merged over ``parameters``
    role_parameters: dict[str, dict[str, Any]] = Field(default_factory=dict)
    policy: ResolvedPolicy
    size_bucket: SizeBucket = "small"
    max_attempts: int = 8
    retry: RetrySpec = Field(default_factory=RetrySpec)
    api_key_id: str | None = None
    request_body: str | None = None
    started_at: datetime | None = None  # the gateway's wall clock at arrival (run latency)
    fingerprint: str | None = None  # of a client-supplied request id's body (idempotency)
    run: AsyncRun | None = None  # an async run (POST /v1/runs): deadline, progress events

    @property
    def deadline(self) -> datetime | None:
        return self.run.deadline if self.run is not None else None

    @property
    def calls(self) -> int:
        """Provider calls the run makes when nothing fails (budget estimate, progress)."""
        return {"adversarial": 1 + 2 * self.iterations, "vote": self.voters + 1,
                "refine": 1 + self.iterations, "planning": 1}[self.mode]


class PlanOutcome(BaseModel):
    request_id: str
    mode: PlanMode
    result: dict[str, Any]
    models: list[str]
    summary: RunSummary

    @property
    def attempts(self) -> list[Attempt]:
        return self.summary.attempts

    @property
    def cost_usd(self) -> float:
        return self.summary.cost_usd

    @property
    def input_tokens(self) -> int:
        return self.summary.input_tokens

    @property
    def output_tokens(self) -> int:
        return self.summary.output_tokens


class _Run:
    """Shared bookkeeping of one plan run: every step's attempts, cost and tokens."""

    def __init__(self, inp: PlanInput, fx: Effects) -> None:
        self.inp, self.fx = inp, fx
        self.attempts: list[Attempt] = []
        self.steps: list[StepResult] = []

    def parameters(self, role: Role) -> dict[str, Any]:
        inp = self.inp
        return {**inp.parameters, **inp.role_parameters.get(role, {})}

    async def step(self, route: Route, messages: list[dict[str, Any]], label: str,
                   attempts: list[Attempt] | None = None, *,
                   role: Role = "primary") -> StepResult:
        res = await complete_with_failover(
            self.fx, request_id=self.inp.request_id, route=route, messages=messages,
            parameters=self.parameters(role), policy=self.inp.policy,
            max_attempts=self.inp.max_attempts, deadline=self.inp.deadline,
            step=label, attempts=self.attempts if attempts is None else attempts)
        if attempts is None:
            self.steps.append(res)
        return res

    async def parallel(self, calls: list[tuple[Route, list[dict[str, Any]], str]]
                       ) -> list[StepResult | AllProvidersFailed]:
        """Run steps concurrently; attempts are kept in call order (deterministic)."""
        logs: list[list[Attempt]] = [[] for _ in calls]
        results = await asyncio.gather(
            *(self.step(r, m, label, logs[i]) for i, (r, m, label) in enumerate(calls)),
            return_exceptions=True)
        out: list[StepResult | AllProvidersFailed] = []
        for log, res in zip(logs, results, strict=True):
            self.attempts.extend(log)
            if isinstance(res, StepResult):
                self.steps.append(res)
            if isinstance(res, StepResult | AllProvidersFailed):
                out.append(res)
            else:
                raise res
        return out


def rotated(route: Route, i: int) -> Route:
    """Voter ``i`` starts from the i-th ranked model, so voters use distinct models."""
    c = route.candidates
    k = i % len(c)
    return Route(candidates=c[k:] + c[:k], reason=route.reason)


async def _adversarial(run: _Run) -> dict[str, Any]:
    inp = run.inp
    first = await run.step(inp.primary, inp.messages, "plan")
    plan, critique, rounds = first.completion.content, "", []
    for i in range(1, inp.iterations + 1):
        crit = await run.step(inp.review, prompts.critique_messages(inp.messages, plan),
                              f"critique-{i}", role="reviewer")
        critique = crit.completion.content
        refined = await run.step(inp.primary,
                                 prompts.refine_messages(inp.messages, plan, critique),
                                 f"refine-{i}")
        rounds.append({"round": i, "plan": plan, "critique": critique,
                       "critic_model": crit.candidate.model.id,
                       "refined_plan": refined.completion.content,
                       "planner_model": refined.candidate.model.id})
        plan = refined.completion.content
    if inp.return_plan_only:
        return {"refined_plan": plan}
    return {"initial_plan": first.completion.content, "critique": critique,
            "refined_plan": plan, "rounds": rounds}


async def _vote(run: _Run) -> dict[str, Any]:
    inp = run.inp
    results = await run.parallel([(rotated(inp.primary, i), inp.messages, f"voter-{i + 1}")
                                  for i in range(inp.voters)])
    drafts = [r for r in results if isinstance(r, StepResult)]
    if not drafts:
        raise AllProvidersFailed("every voter failed",
                                 details={"attempts": [a.model_dump() for a in run.attempts]})
    contents = [d.completion.content for d in drafts]
    judge = await run.step(inp.review, prompts.judge_messages(inp.messages, contents), "judge",
                           role="judge")
    selected, rationale = prompts.parse_judgement(judge.completion.content, len(drafts))
    responses = [{"model": d.candidate.model.id, "content": d.completion.content,
                  "selected": i == selected} for i, d in enumerate(drafts)]
    if inp.return_plan_only:
        return {"selected": selected, "content": contents[selected]}
    return {"responses": responses, "selected": selected, "content": contents[selected],
            "judge": judge.candidate.model.id, "rationale": rationale}


async def _refine(run: _Run) -> dict[str, Any]:
    inp = run.inp
    res = await run.step(inp.primary, inp.messages, "draft")
    for i in range(1, inp.iterations + 1):
        res = await run.step(inp.primary,
                             prompts.self_refine_messages(inp.messages, res.completion.content),
                             f"refine-{i}")
    return {"refined_response": res.completion.content, "iterations": inp.iterations,
            "model": res.candidate.model.id}


async def _planning(run: _Run) -> dict[str, Any]:
    res = await run.step(run.inp.primary, run.inp.messages, "planning")
    return {"plan": res.completion.content, "model": res.candidate.model.id}


_MODES = {"adversarial": _adversarial, "vote": _vote, "refine": _refine, "planning": _planning}
_FINAL = {"adversarial": "refined_plan", "vote": "content", "refine": "refined_response",
          "planning": "plan"}


async def run_plan(inp: PlanInput, fx: Effects) -> PlanOutcome:
    """The plan orchestration, identical on the workflow and the local path."""
    run = _Run(inp, fx)
    start = fx.now()
    try:
        result = await _MODES[inp.mode](run)
        if inp.output_schema is not None:
            result["parsed"] = validate_json_output(result[_FINAL[inp.mode]], inp.output_schema)
    except TokenHubError as err:
        await fail_run(fx, err, _summary(run, start, err), inp.request_body, inp.started_at)
        raise
    summary = await write_record(fx, _summary(run, start), started_at=inp.started_at,
                                 request_body=inp.request_body)
    return PlanOutcome(
        request_id=inp.request_id, mode=inp.mode, result=result,
        models=sorted({s.candidate.model.id for s in run.steps}), summary=summary)


def _summary(run: _Run, start: Any, error: TokenHubError | None = None) -> RunSummary:
    inp = run.inp
    return summarize(
        request_id=inp.request_id, kind="plan", mode=inp.mode, executor=run.fx.executor,
        attempts=run.attempts, latency_ms=elapsed_ms(run.fx, start),
        api_key_id=inp.api_key_id, size_bucket=inp.size_bucket,
        budget_ms=inp.policy.max_latency_ms, error=error)
