"""Multi-model orchestration API: ``POST /v1/plan``.

A lean route (``api/deps.py``) like the chat routes, so its body goes through the same
``json_body`` and its limits: FastAPI would decode the JSON with ``json.loads`` before
any check (a 4 MiB body of tiny items held the event loop ~70 ms).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from api.deps import Ctx, json_body, lean_post
from api.responses import JSONResponse, run_link
from api.schemas import PlanResponse
from api.security import stored_body
from shared.contracts import PlanBody
from shared.orchestration.plan import PlanOutcome

router = APIRouter(tags=["plan"])


@lean_post(router, "/v1/plan", scope="plan", body=PlanBody, response=PlanResponse,
           summary="Multi-model orchestration: adversarial, vote, refine, planning", tag="plan")
async def plan(request: Request, ctx: Ctx) -> Response:
    body = await json_body(request, PlanBody)
    caller = ctx.caller(stored_body(request, body), body=body)
    outcome = await ctx.service.run_plan(ctx.service.prepare_plan(body, caller), caller)
    run = outcome.summary
    return JSONResponse(plan_answer(outcome), headers={
        **run_link(ctx.state.settings, outcome.request_id, run.executor),
        "X-TokenHub-Executor": run.executor, "X-TokenHub-Model": run.model or "",
        "X-TokenHub-Provider": run.provider or "",
        "X-TokenHub-Cost-USD": f"{run.cost_usd:.8f}"})


def plan_answer(outcome: PlanOutcome) -> dict[str, Any]:
    """``/v1/plan``'s answer (also an async plan run's result)."""
    run = outcome.summary
    return {"request_id": outcome.request_id, "mode": outcome.mode,
            "executor": run.executor, **outcome.result, "models": outcome.models,
            "cost_usd": run.cost_usd,
            "usage": {"prompt_tokens": run.input_tokens,
                      "completion_tokens": run.output_tokens},
            "attempts": [a.model_dump(mode="json") for a in run.attempts]}
