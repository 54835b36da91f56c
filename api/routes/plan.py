"""Multi-model orchestration API: ``POST /v1/plan``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import PlanCtx
from api.responses import JSONResponse
from api.security import Budget, stored_body
from shared.contracts import PlanBody
from shared.orchestration.plan import PlanInput
from shared.orchestration.prepare import prepare_plan

router = APIRouter(tags=["plan"])


def _calls(inp: PlanInput) -> int:
    """Provider calls a plan run makes (for the budget estimate)."""
    return {"adversarial": 1 + 2 * inp.iterations, "vote": inp.voters + 1,
            "refine": 1 + inp.iterations, "planning": 1}[inp.mode]


@router.post("/v1/plan")
async def plan(body: PlanBody, request: Request, ctx: PlanCtx) -> Response:
    state, principal, dispatcher = ctx.state, ctx.principal, ctx.dispatcher
    inp = prepare_plan(
        body, request_id=ctx.request_id, defaults=state.default_policy,
        ctx=state.routing_context(), rng=state.rng, max_attempts=state.settings.max_attempts,
        known_model=state.known_model, retry=state.plan_retry,
        request_body=stored_body(request, body),
        api_key_id=ctx.api_key_id)
    budget = Budget(request, principal)
    await budget.reserve(inp.primary.candidates[0].estimated_cost_usd * _calls(inp))
    try:
        outcome, executor = await dispatcher.run_plan(inp)
    except BaseException:
        await budget.settle(0.0)
        raise
    await budget.settle(outcome.cost_usd)
    content = {"request_id": outcome.request_id, "mode": outcome.mode, "executor": executor,
               **outcome.result, "models": outcome.models, "cost_usd": outcome.cost_usd,
               "usage": {"prompt_tokens": outcome.input_tokens,
                         "completion_tokens": outcome.output_tokens},
               "attempts": [a.model_dump(mode="json") for a in outcome.attempts]}
    first_ok = next((a for a in outcome.attempts if a.outcome == "ok"), None)
    return JSONResponse(content, headers={
        "X-TokenHub-Executor": executor,
        "X-TokenHub-Model": first_ok.model if first_ok else "",
        "X-TokenHub-Provider": first_ok.provider if first_ok else "",
        "X-TokenHub-Cost-USD": f"{outcome.cost_usd:.8f}"})
